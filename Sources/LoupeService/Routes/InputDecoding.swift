// Turns request bodies into model-ready batches: PNG/JPEG/WebP/PGM images, raw N×784 bytes, JSON
// `instances`, multipart uploads, and OIP tensors. Every refusal says what was expected and what
// came. Pixel inputs (images, bytes, UINT8 tensors, JSON numbers) are 0…255 and normalized with
// the model's own normalization; FP32 OIP tensors are taken as model-ready values.
import LoupeData
import LoupeHTTP

/// A decoded batch for one model.
struct DecodedBatch {
    var count: Int
    /// The raw pixels when the input was pixels (for drift statistics); nil for FP32 tensors.
    var pixels: [UInt8]?
    /// The model-ready floats when they came as floats (FP32 tensors); nil for pixels, which are
    /// normalized where they are used: straight into the forward pass's batch buffer (no float
    /// array per request), or by `input`.
    var floats: [Float]?
    /// The model's normalization, for `pixels`.
    var normalization: Normalization

    /// Model-ready floats as they came (`pixels`, when given, are the ones they were made from).
    init(input: [Float], count: Int, pixels: [UInt8]?) {
        floats = input; self.count = count; self.pixels = pixels; normalization = .standard
    }

    /// Pixels, normalized by `normalization` where they are used.
    init(pixels: [UInt8], count: Int, normalization: Normalization) {
        floats = nil; self.count = count; self.pixels = pixels; self.normalization = normalization
    }

    /// `count × inputCount` model-ready floats (made from the pixels at each call when they came as pixels).
    var input: [Float] { floats ?? normalization.apply(pixels ?? []) }
}

struct InputLimits {
    var maxImages: Int
    var maxImageDimension: Int
    /// Resize images of another size to the model's (opt-in, `?resize=true`).
    var resize: Bool
    /// The process-wide allowance for image decoding in flight (`limits.decode_budget_bytes`).
    var decodeBudget: DecodeBudget = .unlimited
}

enum InputDecoding {
    // MARK: /predict bodies

    static func predictBody(_ request: HTTPRequest, model: any InferenceModel, limits: InputLimits) throws(ServiceError) -> DecodedBatch {
        let body = request.body
        guard !body.isEmpty else {
            throw .badRequest("empty_body", "the request body is empty; expected an image (PNG, JPEG, WebP or PGM), raw pixels or JSON instances")
        }
        let contentType = request.headers["Content-Type"] ?? ""
        let mediaType = Self.mediaType(contentType)
        switch mediaType {
        case "image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/webp", "image/x-portable-graymap", "image/x-portable-anymap", "image/x-pgm", "image/pgm":
            return try images(CollectionOfOne(body), model: model, limits: limits)
        case "application/octet-stream":
            return try rawPixels(body, model: model, limits: limits)
        case "application/json":
            return try jsonInstances(body, model: model, limits: limits)
        case "multipart/form-data":
            return try images(try multipartFiles(body, contentType: contentType), model: model, limits: limits)
        case "", "application/x-www-form-urlencoded":
            // `curl --data-binary @x.png` sends form-urlencoded: accept it when the bytes are an image.
            if ImageDecoder.sniff(body) != nil { return try images(CollectionOfOne(body), model: model, limits: limits) }
            throw .unsupportedMediaType(contentType)
        default:
            throw .unsupportedMediaType(contentType)
        }
    }

    /// `files`: the image files (the body itself when it is one: `CollectionOfOne`, no array).
    /// A Content-Type's media type: the part before any parameters, trimmed, lower-cased. The
    /// common header ("image/png": nothing to cut, trim or lower) is returned as it is, after one
    /// pass over its bytes (this runs for every request).
    static func mediaType(_ contentType: String) -> String {
        let plain = contentType.utf8.withContiguousStorageIfAvailable { bytes in   // a plain loop over the bytes, not the UTF8View
            bytes.allSatisfy { b in
                b < 0x80 && b != UInt8(ascii: ";") && b != UInt8(ascii: " ") && b != UInt8(ascii: "\t") && !(b >= 0x41 && b <= 0x5A)
            }
        } ?? false
        if plain { return contentType }
        return String(contentType.prefix { $0 != ";" }).trimmingSpaces().lowercased()
    }

    /// `files`: the image files (the body itself when it is one: `CollectionOfOne`, no array).
    static func images(_ files: some RandomAccessCollection<[UInt8]>, model: any InferenceModel, limits: InputLimits) throws(ServiceError) -> DecodedBatch {
        guard !files.isEmpty else {
            throw .badRequest("no_images", "the multipart body holds no file part; send the image as a file field, e.g. curl -F image=@x.png")
        }
        guard files.count <= limits.maxImages else {
            throw .tooLarge("a request may carry at most \(limits.maxImages) images, received \(files.count)")
        }
        let w = model.imageWidth, h = model.imageHeight
        var pixels = [UInt8]()
        if files.count > 1 { pixels.reserveCapacity(files.count * w * h) }
        for (index, file) in files.enumerated() {
            let image = try decodeImage(file, index: files.count > 1 ? index : nil, limits: limits, model: model)
            if image.width == w && image.height == h {
                // One image of the model's size: its pixels as decoded, not copied into a batch buffer.
                if files.count == 1 { return normalize(image.pixels, count: 1, model: model) }
                pixels.append(contentsOf: image.pixels)
            } else if limits.resize {
                pixels.append(contentsOf: image.resized(width: w, height: h).pixels)
            } else {
                throw .badRequest("wrong_image_size",
                                  "\(imagePrefix(index, files.count))expected a \(w)×\(h) image, received \(image.width)×\(image.height) (add ?resize=true to scale it)")
            }
        }
        return normalize(pixels, count: files.count, model: model)
    }

    /// Decodes to the model's channel count; with `?resize=true`, lets a JPEG decode scaled down
    /// towards the model's size (the caller resizes the rest of the way).
    static func decodeImage(_ bytes: [UInt8], index: Int?, limits: InputLimits, model: any InferenceModel) throws(ServiceError) -> PixelImage {
        let prefix = index.map { "image \($0): " } ?? ""
        guard ImageDecoder.sniff(bytes) != nil else {
            throw .badRequest("invalid_image", "\(prefix)expected a PNG, JPEG, WebP or PGM image, but the data does not start with a PNG, JPEG, WebP or PGM signature")
        }
        let channels = model.imageChannels == 3 ? 3 : 1
        let fitting = limits.resize ? (width: model.imageWidth, height: model.imageHeight) : nil
        do {
            let decoderLimits = ImageDecoder.Limits(maxDimension: limits.maxImageDimension,
                                                    maxPixels: limits.maxImageDimension * limits.maxImageDimension,
                                                    maxInputBytes: Int.max)
            return try ImageDecoder.decode(bytes, channels: channels, limits: decoderLimits, budget: limits.decodeBudget, fitting: fitting)
        } catch LoupeDataError.imageTooLarge(let width, let height, let limit) {
            throw ServiceError(status: 413, code: "image_too_large",
                               "\(prefix)the image is \(width)×\(height) pixels, over the limit of \(limit) (limits.max_image_dimension)")
        } catch LoupeDataError.decodeExceedsBudget(let needed, let limit) {
            throw ServiceError(status: 413, code: "image_too_large",
                               "\(prefix)decoding the image needs about \(needed) bytes, more than the \(limit)-byte allowance (limits.decode_budget_bytes)")
        } catch LoupeDataError.decodeBudgetExhausted(let limit) {
            throw ServiceError(status: 503, code: "decode_budget_exhausted",
                               "images being decoded already use the \(limit)-byte allowance (limits.decode_budget_bytes); retry shortly",
                               retryAfterSeconds: 1)
        } catch {
            throw .badRequest("invalid_image", "\(prefix)the image could not be decoded: \(error)")
        }
    }

    static func rawPixels(_ body: [UInt8], model: any InferenceModel, limits: InputLimits) throws(ServiceError) -> DecodedBatch {
        let n = model.inputCount
        guard body.count % n == 0 else {
            throw .badRequest("wrong_input_size",
                              "expected a multiple of \(n) bytes (\(model.imageWidth)×\(model.imageHeight) pixels of \(model.imageChannels > 1 ? "\(model.imageChannels) bytes" : "one byte") per image), received \(body.count) bytes")
        }
        let count = body.count / n
        guard count <= limits.maxImages else {
            throw .tooLarge("a request may carry at most \(limits.maxImages) images, received \(count)")
        }
        return normalize(body, count: count, model: model)
    }

    static func jsonInstances(_ body: [UInt8], model: any InferenceModel, limits: InputLimits) throws(ServiceError) -> DecodedBatch {
        try jsonInstances(document: try jsonDocument(body), model: model, limits: limits)
    }

    static func jsonDocument(_ body: [UInt8]) throws(ServiceError) -> JSONValue {
        do { return try JSONReader.parse(body) } catch {
            throw .badRequest("invalid_json", "the body is not valid JSON: \(error)")
        }
    }

    /// `{"instances": [...]}` already parsed (POST /feedback reads its labels from the same document).
    static func jsonInstances(document: JSONValue, model: any InferenceModel, limits: InputLimits) throws(ServiceError) -> DecodedBatch {
        guard let instances = document["instances"]?.arrayValue else {
            throw .badRequest("invalid_input", "expected a JSON object {\"instances\": [...]}, received \(document["instances"].map { "instances as \($0.kindName)" } ?? document.kindName + " without 'instances'")")
        }
        return try Self.instances(instances, field: "instances", model: model, limits: limits)
    }

    /// A JSON array of images (`field` names it in messages): each one `n` numbers, `h` rows of `w`
    /// numbers, `h` rows of `w` arrays of the model's C channels (H×W×C), `{"b64": "<base64 PNG/JPEG/WebP/PGM>"}`, or any of
    /// these wrapped in a one-key object naming the input (TF Serving's named row format,
    /// `{"image": {"b64": …}}`). Values are whole pixel values 0…255.
    static func instances(_ instances: [JSONValue], field: String, model: any InferenceModel,
                          limits: InputLimits) throws(ServiceError) -> DecodedBatch {
        guard !instances.isEmpty else { throw .badRequest("invalid_input", "'\(field)' is empty; expected at least one image") }
        guard instances.count <= limits.maxImages else {
            throw .tooLarge("a request may carry at most \(limits.maxImages) images, received \(instances.count)")
        }
        let n = model.inputCount, w = model.imageWidth, h = model.imageHeight, c = model.imageChannels
        var pixels = [UInt8](); pixels.reserveCapacity(instances.count * n)
        for (index, wrapped) in instances.enumerated() {
            var instance = wrapped
            if let pairs = instance.objectValue, pairs.count == 1, pairs[0].0 != "b64" { instance = pairs[0].1 }
            if let pairs = instance.objectValue {
                guard pairs.count == 1, pairs[0].0 == "b64", let b64 = pairs[0].1.stringValue else {
                    throw .badRequest("invalid_input", "instance \(index): expected {\"b64\": \"<base64 PNG>\"} (alone, or wrapped in a one-key object naming the input), received an object with \(pairs.count == 1 ? "'\(echoed(pairs[0].0))' as \(pairs[0].1.kindName)" : "keys " + pairs.map { "'\(echoed($0.0))'" }.joined(separator: ", "))")
                }
                guard let bytes = Base64.decode(b64) else {
                    throw .badRequest("invalid_input", "instance \(index): 'b64' is not valid base64; expected the standard or URL-safe alphabet (A-Z a-z 0-9 + / or - _), '=' only as final padding")
                }
                let image = try decodeImage(bytes, index: index, limits: limits, model: model)
                if image.width == w && image.height == h {
                    pixels.append(contentsOf: image.pixels)
                } else if limits.resize {
                    pixels.append(contentsOf: image.resized(width: w, height: h).pixels)
                } else {
                    throw .badRequest("wrong_image_size", "instance \(index): expected a \(w)×\(h) image, received \(image.width)×\(image.height) (add ?resize=true to scale it)")
                }
                continue
            }
            guard let array = instance.arrayValue else {
                throw .badRequest("invalid_input", "instance \(index): expected \(n) numbers, \(h) arrays of \(w) numbers (or of \(w) one-number arrays), or {\"b64\": \"<base64 PNG or JPEG>\"}, received \(instance.kindName)")
            }
            let start = pixels.count
            if array.first?.arrayValue != nil {
                guard array.count == h else {
                    throw .badRequest("wrong_input_size", "instance \(index): expected \(h) rows of \(w) numbers, received \(array.count) rows")
                }
                for (r, row) in array.enumerated() {
                    guard var values = row.arrayValue, values.count == w else {
                        throw .badRequest("wrong_input_size", "instance \(index): row \(r): expected \(w) numbers, received \(row.arrayValue.map { "\($0.count) values" } ?? row.kindName)")
                    }
                    if values.first?.arrayValue != nil || c > 1 {
                        // H×W×C: each pixel is an array of the model's channels.
                        var flat: [JSONValue] = []; flat.reserveCapacity(w * c)
                        for pixel in values {
                            guard let channels = pixel.arrayValue, channels.count == c else {
                                throw .badRequest("wrong_input_size", "instance \(index): row \(r): expected \(w) pixels of \(c == 1 ? "one channel ([v])" : "\(c) channels")), received \(pixel.arrayValue.map { "a pixel of \($0.count) channels" } ?? pixel.kindName)")
                            }
                            flat += channels
                        }
                        values = flat
                    }
                    try appendPixels(values, to: &pixels, instance: index)
                }
            } else {
                guard array.count == n else {
                    throw .badRequest("wrong_input_size", "instance \(index): expected \(n) numbers (\(w)×\(h) pixels\(c > 1 ? " of \(c) channels" : "")), received \(array.count)")
                }
                try appendPixels(array, to: &pixels, instance: index)
            }
            precondition(pixels.count - start == n)
        }
        return normalize(pixels, count: instances.count, model: model)
    }

    private static func appendPixels(_ values: [JSONValue], to pixels: inout [UInt8], instance: Int) throws(ServiceError) {
        for v in values {
            guard let x = v.numberValue else {
                throw .badRequest("invalid_input", "instance \(instance): expected pixel values as numbers from 0 to 255, received \(v.kindName)")
            }
            guard x >= 0, x <= 255, x == x.rounded() else {
                throw .badRequest("invalid_input", "instance \(instance): expected whole pixel values from 0 to 255, received \(x)")
            }
            pixels.append(UInt8(x))
        }
    }

    static func normalize(_ pixels: [UInt8], count: Int, model: any InferenceModel) -> DecodedBatch {
        DecodedBatch(pixels: pixels, count: count, normalization: model.normalization)
    }

    private static func imagePrefix(_ index: Int, _ count: Int) -> String { count > 1 ? "image \(index): " : "" }
}
