// WebP over the real server and the real CLI: Fashion-MNIST test images encoded by Debian's cwebp
// (package webp) are classified as their PNGs are, in every way an image can come (image/webp,
// multipart, JSON b64, a bare --data-binary upload, `loupe predict`); truncated and forged files
// get their 4xx with a sentence.
import FoundationEssentials
import Glibc
import LoupeData
import Testing

/// WebP files made from gray pixels with cwebp (written as PNG first).
struct WebPTools {
    let dir: TempDir
    init() throws { dir = try TempDir() }

    func encode(_ pixels: [UInt8], width: Int, height: Int, name: String, options: [String] = ["-lossless"]) throws -> [UInt8] {
        try dir.write(name + ".png", PNGWriter.gray(width: width, height: height, pixels: pixels))
        let r = try CLIProcess.run("cwebp", ["-quiet"] + options + [dir.path + "/" + name + ".png", "-o", dir.path + "/" + name + ".webp"])
        guard r.status == 0 else { throw E2EError("cwebp failed (apt install webp): \(r.output)") }
        return try FileIO.readFile(dir.path + "/" + name + ".webp")
    }
}

@Suite(.serialized) struct WebPEndToEndTests {
    @Test func webpImagesGetTheClassesOfTheirPNGs() throws {
        let repo = try JPEGEndToEndTests.shippedRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let tools = try WebPTools()
        let n = 6
        let (pixels, _) = try E2E.testImages(n)
        func image(_ i: Int) -> [UInt8] { Array(pixels[(i * 784)..<((i + 1) * 784)]) }
        func predict(_ body: [UInt8], _ contentType: String) throws -> [Int] {
            let r = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", contentType)], body: body)
            guard r.status == 200 else { throw E2EError("\(contentType): \(r.status) \(r.text)") }
            return try decode(PredictBody.self, r).predictions.map(\.class)
        }
        var pngClasses: [Int] = [], webps: [[UInt8]] = []
        for i in 0..<n {
            pngClasses += try predict(PNGWriter.gray(width: 28, height: 28, pixels: image(i)), "image/png")
            // Lossless for most, lossy for the last two (still the same class for these images).
            webps.append(try tools.encode(image(i), width: 28, height: 28, name: "img\(i)", options: i < n - 2 ? ["-lossless"] : ["-q", "95"]))
        }
        #expect(Set(pngClasses).count >= 3, "\(pngClasses)")
        for i in 0..<n {
            #expect(try predict(webps[i], "image/webp") == [pngClasses[i]], "image \(i)")
        }
        let multipart = multipartImages(Array(webps[0..<3]), ext: "webp", contentType: "image/webp")
        #expect(try predict(multipart, "multipart/form-data; boundary=B") == Array(pngClasses[0..<3]))
        let json = "{\"instances\": [" + (0..<n).map { "{\"b64\": \"\(base64(webps[$0]))\"}" }.joined(separator: ",") + "]}"
        #expect(try predict(Array(json.utf8), "application/json") == pngClasses)
        #expect(try predict(webps[0], "application/x-www-form-urlencoded") == [pngClasses[0]])

        // Truncated: 400 naming the problem. A header claiming 16000×16000: 413 before any decoding.
        let truncated = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "image/webp")],
                                         body: Array(webps[0].prefix(webps[0].count - 10)))
        #expect(truncated.status == 400)
        let truncatedError = try decode(ErrorBody.self, truncated)
        #expect(truncatedError.code == "invalid_image" && truncatedError.error.contains("WebP") && truncatedError.error.contains("truncated"),
                "\(truncated.text)")
        // VP8L: after "RIFF" size "WEBP" "VP8L" size comes the 0x2F signature, then width − 1 and height − 1 in 14 bits each.
        var forged = webps[0]
        #expect(Array(forged[12..<16]) == Array("VP8L".utf8))
        let bits = UInt32(16000 - 1) | UInt32(16000 - 1) << 14 | (UInt32(forged[24]) >> 4) << 28
        for i in 0..<4 { forged[21 + i] = UInt8(truncatingIfNeeded: bits >> (8 * UInt32(i))) }
        let huge = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "image/webp")], body: forged)
        #expect(huge.status == 413)
        #expect(try decode(ErrorBody.self, huge).error.contains("16000×16000"), "\(huge.text)")
        #expect(try predict(webps[1], "image/webp") == [pngClasses[1]])
    }

    @Test func loupePredictReadsWebPFiles() throws {
        let tools = try WebPTools()
        let (pixels, _) = try E2E.testImages(3)
        var paths: [String] = []
        for i in 0..<3 {
            _ = try tools.encode(Array(pixels[(i * 784)..<((i + 1) * 784)]), width: 28, height: 28, name: "img\(i)")
            paths += [tools.dir.path + "/img\(i).png", tools.dir.path + "/img\(i).webp"]
        }
        let r = try CLIProcess.loupe(["predict", "--json", "--model", E2E.root + "/models/fashion"] + paths)
        #expect(r.status == 0, "\(r.output)")
        let predictions = try JSONDecoder().decode(OfflineBody.self, from: Data(r.stdout.utf8)).predictions
        #expect(predictions.count == 6)
        for i in 0..<3 where predictions.count == 6 {
            #expect(predictions[2 * i].class == predictions[2 * i + 1].class, "img\(i): PNG and WebP")
        }
    }
}
