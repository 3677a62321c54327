// JPEG over the real server and the real CLI: Fashion-MNIST test images encoded by Debian's
// cjpeg (libjpeg-turbo-progs) are classified as their PNGs are, in every way an image can come
// (image/jpeg, multipart, JSON b64, an Exif-rotated file, a large progressive photo with
// ?resize=true); broken, truncated and bomb files get their 4xx with a sentence.
import FoundationEssentials
import Glibc
import LoupeData
import Testing

/// JPEG files made from gray pixels with cjpeg.
struct JPEGTools {
    let dir: TempDir
    init() throws { dir = try TempDir() }

    func encode(_ pixels: [UInt8], width: Int, height: Int, name: String, options: [String] = ["-quality", "95"]) throws -> [UInt8] {
        try dir.write(name + ".pgm", Array("P5\n\(width) \(height)\n255\n".utf8) + pixels)
        let r = try CLIProcess.run("cjpeg", options + ["-outfile", dir.path + "/" + name + ".jpg", dir.path + "/" + name + ".pgm"])
        guard r.status == 0 else { throw E2EError("cjpeg failed (apt install libjpeg-turbo-progs): \(r.output)") }
        return try FileIO.readFile(dir.path + "/" + name + ".jpg")
    }
}

@Suite(.serialized) struct JPEGEndToEndTests {
    /// The shipped (trained) model in a temp repository.
    static func shippedRepository() throws -> TempDir {
        let repo = try TempDir()
        try repo.mkdir("fashion/1")
        try repo.write("fashion/1/model.loupe", try FileIO.readFile(E2E.root + "/models/fashion/1/model.loupe"))
        return repo
    }

    @Test func jpegImagesGetTheClassesOfTheirPNGs() throws {
        let repo = try Self.shippedRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let tools = try JPEGTools()
        let n = 8
        let (pixels, _) = try E2E.testImages(n)
        func image(_ i: Int) -> [UInt8] { Array(pixels[(i * 784)..<((i + 1) * 784)]) }
        func predict(_ body: [UInt8], _ contentType: String, _ target: String = "/predict") throws -> [Int] {
            let r = try HTTP.request(port: server.port, "POST", target, headers: [("Content-Type", contentType)], body: body)
            guard r.status == 200 else { throw E2EError("\(contentType) \(target): \(r.status) \(r.text)") }
            return try decode(PredictBody.self, r).predictions.map(\.class)
        }
        var pngClasses: [Int] = [], jpegs: [[UInt8]] = []
        for i in 0..<n {
            pngClasses += try predict(PNGWriter.gray(width: 28, height: 28, pixels: image(i)), "image/png")
            jpegs.append(try tools.encode(image(i), width: 28, height: 28, name: "img\(i)"))
        }
        // The trained model tells these images apart: the comparison is not between constants.
        #expect(Set(pngClasses).count >= 4, "\(pngClasses)")
        for i in 0..<n {
            #expect(try predict(jpegs[i], "image/jpeg") == [pngClasses[i]], "image \(i)")
        }
        // multipart (curl -F image=@a.jpg -F image=@b.jpg) and JSON b64.
        let multipart = multipartImages(Array(jpegs[0..<3]), ext: "jpg", contentType: "image/jpeg")
        #expect(try predict(multipart, "multipart/form-data; boundary=B") == Array(pngClasses[0..<3]))
        let json = "{\"instances\": [" + (0..<n).map { "{\"b64\": \"\(base64(jpegs[$0]))\"}" }.joined(separator: ",") + "]}"
        #expect(try predict(Array(json.utf8), "application/json") == pngClasses)
        // TF Serving / KServe v1 REST takes the same b64 instances.
        let v1 = try HTTP.request(port: server.port, "POST", "/v1/models/fashion:predict", headers: [("Content-Type", "application/json")],
                                  body: Array("{\"instances\": [{\"b64\": \"\(base64(jpegs[0]))\"}]}".utf8))
        #expect(v1.status == 200, "\(v1.text)")
        struct V1Body: Decodable { var predictions: [[Float]] }
        let probabilities = try JSONDecoder().decode(V1Body.self, from: Data(v1.body)).predictions
        #expect(probabilities.count == 1 && probabilities[0].indices.max { probabilities[0][$0] < probabilities[0][$1] } == pngClasses[0])
        // curl --data-binary @x.jpg (form-urlencoded): sniffed.
        #expect(try predict(jpegs[0], "application/x-www-form-urlencoded") == [pngClasses[0]])

        // Stored turned a quarter counter-clockwise, with Exif orientation 6 (show it turned clockwise).
        var turnedPixels = [UInt8](repeating: 0, count: 784)
        for y in 0..<28 { for x in 0..<28 { turnedPixels[y * 28 + x] = image(1)[x * 28 + 27 - y] } }
        let turned = try tools.encode(turnedPixels, width: 28, height: 28, name: "img1-turned")
        let exif: [UInt8] = [0xFF, 0xE1, 0x00, 0x22] + Array("Exif".utf8) + [0, 0, 0x4D, 0x4D, 0, 42, 0, 0, 0, 8, 0, 1,
                                                                             0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]
        let tagged = Array(turned[0..<2]) + exif + Array(turned[2...])
        #expect(try predict(tagged, "image/jpeg") == [pngClasses[1]])

        // A 640×480 progressive photo of image 2 (each pixel a block): 400 without ?resize, its class with it.
        var big = [UInt8](repeating: 0, count: 640 * 480)
        for y in 0..<480 { for x in 0..<640 { big[y * 640 + x] = image(2)[min(27, y * 28 / 480) * 28 + min(27, x * 28 / 640)] } }
        let photo = try tools.encode(big, width: 640, height: 480, name: "photo", options: ["-quality", "90", "-progressive"])
        let wrongSize = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "image/jpeg")], body: photo)
        #expect(wrongSize.status == 400)
        #expect(try decode(ErrorBody.self, wrongSize).error.contains("expected a 28×28 image, received 640×480"), "\(wrongSize.text)")
        #expect(try predict(photo, "image/jpeg", "/predict?resize=true") == [pngClasses[2]])

        // Truncated and corrupt: 400 with a sentence; a 60000×60000 header: 413 at once; a
        // progressive 4096×4096 header (within max_image_dimension) needs more than the whole
        // decode budget: 413 naming limits.decode_budget_bytes.
        let truncated = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "image/jpeg")],
                                         body: Array(jpegs[0].prefix(jpegs[0].count / 2)))
        #expect(truncated.status == 400)
        let truncatedError = try decode(ErrorBody.self, truncated)
        #expect(truncatedError.code == "invalid_image" && truncatedError.error.contains("truncated"), "\(truncated.text)")
        func bomb(_ side: Int, progressive: Bool) -> [UInt8] {
            let size: [UInt8] = [UInt8(side >> 8), UInt8(side & 0xFF), UInt8(side >> 8), UInt8(side & 0xFF)]
            let frame: [UInt8] = [0xFF, 0xD8, 0xFF, progressive ? 0xC2 : 0xC0, 0, 17, 8] + size + [3, 1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]
            return frame + [0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0, 3, 0, 0, 63, 0, 0x55, 0x55, 0xFF, 0xD9]
        }
        let huge = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "image/jpeg")], body: bomb(60000, progressive: false))
        #expect(huge.status == 413)
        #expect(try decode(ErrorBody.self, huge).error.contains("60000×60000"), "\(huge.text)")
        let heavy = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "image/jpeg")], body: bomb(4096, progressive: true))
        #expect(heavy.status == 413)
        #expect(try decode(ErrorBody.self, heavy).error.contains("limits.decode_budget_bytes"), "\(heavy.text)")
        // The server is still fine.
        #expect(try predict(jpegs[3], "image/jpeg") == [pngClasses[3]])
    }

    @Test func loupePredictReadsJPEGFiles() throws {
        let tools = try JPEGTools()
        let (pixels, _) = try E2E.testImages(3)
        var paths: [String] = []
        for i in 0..<3 {
            let image = Array(pixels[(i * 784)..<((i + 1) * 784)])
            try tools.dir.write("img\(i).png", PNGWriter.gray(width: 28, height: 28, pixels: image))
            _ = try tools.encode(image, width: 28, height: 28, name: "img\(i)")
            paths += [tools.dir.path + "/img\(i).png", tools.dir.path + "/img\(i).jpg"]
        }
        let r = try CLIProcess.loupe(["predict", "--json", "--model", E2E.root + "/models/fashion"] + paths)
        #expect(r.status == 0, "\(r.output)")
        let predictions = try JSONDecoder().decode(OfflineBody.self, from: Data(r.stdout.utf8)).predictions
        #expect(predictions.count == 6)
        for i in 0..<3 where predictions.count == 6 {
            #expect(predictions[2 * i].class == predictions[2 * i + 1].class, "img\(i): PNG and JPEG")
        }
    }
}
