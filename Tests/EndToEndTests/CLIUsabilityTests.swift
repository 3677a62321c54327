// The first minutes with the CLI (issue 12): --version, a mistyped command, negative numbers,
// and `predict` with one bad file among good ones — each a sentence and the right exit status.
import FoundationEssentials
import Glibc
import LoupeData
import Testing

@Suite struct CLIUsabilityTests {
    @Test func versionAndAMistypedCommand() throws {
        let version = try CLIProcess.loupe(["--version"])
        #expect(version.status == 0 && version.stdout.trimmingSuffixNewline == "0.1.0", "\(version.output)")
        let typo = try CLIProcess.loupe(["trian"])
        #expect(typo.status == 64)
        #expect(typo.stderr.contains("'trian' is not a loupe command. Did you mean 'train'?"), "\(typo.stderr)")
        #expect(typo.stderr.contains("SUBCOMMANDS:"))
        let far = try CLIProcess.loupe(["frobnicate"])
        #expect(far.status == 64 && !far.stderr.contains("Did you mean"))
    }

    @Test func negativeNumbersGetARealMessage() throws {
        for (args, text) in [(["train", "--epochs", "-1"], "--epochs must be at least 1, got -1."),
                             (["train", "--threads", "-2"], "--threads must be between 1 and 256, got -2."),
                             (["predict", "--model", "models/fashion", "--top-k", "-3", "x.png"], "--top-k must be an integer from 0 to the model's number of classes, received -3."),
                             (["predict", "--model", "models/fashion", "--top-k", "11", "examples/images/0-ankle-boot.png"], "--top-k must be an integer from 0 to 10, received 11."),
                             (["explain", "--model", "models/fashion", "--target", "-1", "examples/images/0-ankle-boot.png"], "--target must be a class from 0 to 9, received -1."),
                             (["explain", "--model", "models/fashion", "--steps", "-5", "examples/images/0-ankle-boot.png"], "--steps must be 1…1024, received -5."),
                             (["explain", "--model", "models/fashion", "--method", "occlusion", "--window", "-2", "examples/images/0-ankle-boot.png"], "indow must be 1…28 pixels for a 28×28 input, got -2."),
                             (["inspect", "--self-test-tolerance", "-1", "models/fashion"], "--self-test-tolerance must be between 0 and 1, got -1.0"),
                             (["serve", "--port", "-1"], "server.port"),
                             (["serve", "--workers", "-1"], "workers")] {
            let r = try CLIProcess.loupe(args, directory: E2E.root)
            #expect(r.status == 64, "\(args): \(r.output)")
            #expect(r.stderr.contains(text), "\(args): \(r.stderr)")
            #expect(!r.stderr.contains("Missing value"))
        }
    }

    /// A port in use names the address; generated request ids are 16 hex digits; the load
    /// line's seconds are a JSON number; the repository API without a token is warned about.
    @Test func serveStartsUpSpeakingPlainly() throws {
        let repo = try E2E.makeRepository()
        let first = try ServeProcess(models: repo.path, settings: ["repository_api.enabled=true"])
        try first.waitReady()
        let loaded = first.process.waitForLine(containing: "load_seconds").map(String.init) ?? ""
        #expect(loaded.contains("\"load_seconds\":0.") && !loaded.contains("\"load_seconds\":\""), "\(loaded)")
        #expect(first.process.waitForLine(containing: "the repository API is enabled without a token") != nil, "\(first.log)")
        for _ in 0..<3 {
            let id = try HTTP.request(port: first.port, "GET", "/health/live").header("X-Request-ID") ?? ""
            #expect(id.count == 16 && id.allSatisfy(\.isHexDigit), "\(id)")
        }
        let dir = try TempDir()
        let second = try ChildProcess([try E2E.binary(), "serve", "--models", repo.path, "--host", "127.0.0.1",
                                       "--port", String(first.port), "--log-format", "json"], logPath: dir.path + "/second.log")
        #expect(second.wait(seconds: 20) == 1)
        #expect(second.log.contains("cannot listen on 127.0.0.1:\(first.port): the address is already in use"), "\(second.log)")
    }

    @Test func serveConfigurationErrorsPrintServesUsage() throws {
        for args in [["serve", "--set", "nope=1"], ["serve", "--port", "abc"], ["serve", "--set", "novalue"]] {
            let r = try CLIProcess.loupe(args)
            #expect(r.status == 64, "\(args): \(r.output)")
            #expect(r.stderr.contains("Usage: loupe serve"), "\(args): \(r.stderr)")
            #expect(!r.stderr.contains("loupe <subcommand>"))
        }
    }

    /// models.default names a model that is not in the repository (a typo): a request naming no model is told which
    /// model it asked for and what the repository has, not "model 'default' is not loaded"; a name no model can have
    /// stops serve with the key's sentence and status 64.
    @Test func aDefaultModelThatIsNotThereIsNamed() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, settings: ["models.default=fashon"])
        try server.waitReady()
        let r = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")],
                                 body: [UInt8](repeating: 0, count: 784))
        #expect(r.status == 404)
        #expect(r.text.contains("model 'fashon' is not loaded (the default model, models.default); the repository has 'fashion'"), "\(r.text)")
        let named = try HTTP.request(port: server.port, "POST", "/predict?model=fashion", headers: [("Content-Type", "application/octet-stream")],
                                     body: [UInt8](repeating: 0, count: 784))
        #expect(named.status == 200)
        // Loopback port 0 and a bound wait: a binary that took the value would serve, not exit; the test then fails in 30 s.
        let bad = try CLIProcess.run(CLIProcess.loupePath, ["serve", "--models", repo.path, "--host", "127.0.0.1", "--port", "0",
                                                            "--set", "models.default=../fashion"], timeout: 30)
        #expect(bad.status == 64, "\(bad.output)")
        #expect(bad.stderr.contains("models.default (flag): expected a model name"), "\(bad.stderr)")
    }

    @Test func aMissingModelIsASentenceWithTheAbsolutePath() throws {
        let dir = try TempDir()
        let r = try CLIProcess.loupe(["evaluate", "--model", "no-such-model"], directory: dir.path)
        #expect(r.status != 0)
        #expect(r.stderr.contains("there is no model at \(dir.path)/no-such-model"), "\(r.stderr)")
    }

    /// Shell completion ends a directory with '/': `--model models/fashion/` is the model directory
    /// (before, its latest version was looked for under models/fashion/fashion and not found).
    @Test func aModelDirectoryWithATrailingSlashIsFound() throws {
        let image = "examples/images/0-ankle-boot.png"
        for model in ["models/fashion/", "models/fashion//", "models/fashion/1/"] {
            let inspect = try CLIProcess.loupe(["inspect", "--no-self-test", model], directory: E2E.root)
            #expect(inspect.status == 0 && inspect.stdout.contains("status          valid"), "\(model): \(inspect.output)")
            let predict = try CLIProcess.loupe(["predict", "--model", model, image], directory: E2E.root)
            #expect(predict.status == 0 && predict.stdout.contains("Ankle boot"), "\(model): \(predict.output)")
        }
    }

    /// `healthcheck --timeout` bounds the wait for a server that accepts and never answers. Before, 0
    /// (or anything under a microsecond, or a negative number) set no socket timeout at all and the
    /// probe waited forever; now those are refused, and a positive timeout ends the wait.
    @Test func healthcheckTimeoutMustBePositive() throws {
        // A listener that never accepts: the connection completes in the backlog, no answer comes.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound)
        let url = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))/health/ready"
        for timeout in ["0", "0.0000001", "-1", "nan", "inf"] {
            let r = try CLIProcess.run(CLIProcess.loupePath, ["healthcheck", "--url", url, "--timeout", timeout], timeout: 20)
            #expect(r.status == 64, "--timeout \(timeout): \(r.output)")
            #expect(r.stderr.contains("--timeout must be"), "--timeout \(timeout): \(r.stderr)")
        }
        let r = try CLIProcess.run(CLIProcess.loupePath, ["healthcheck", "--url", url, "--timeout", "0.3"], timeout: 20)
        #expect(r.status == 1 && r.stdout.contains("no answer"), "\(r.output)")
        // A port past 65535 is refused, not cut to its low 16 bits (before, port + 65536 probed this listener).
        let port = Int(UInt16(bigEndian: address.sin_port))
        for bad in [String(port + 65536), "0", "http", ""] {
            let wrapped = try CLIProcess.run(CLIProcess.loupePath, ["healthcheck", "--url", "http://127.0.0.1:\(bad)/health/ready", "--timeout", "0.3"], timeout: 20)
            #expect(wrapped.status == 1 && wrapped.stdout.contains("the port must be a number from 1 to 65535, got '\(bad)'"), "\(bad): \(wrapped.output)")
        }
    }

    /// `import --offset -1` (PyTorch's (x − 0.5) / 0.5 normalization) is a value, not a missing one; a
    /// normalization that is not a finite number, or a zero scale, is refused before anything is written.
    @Test func importTakesANegativeOffsetAndRefusesANonFiniteNormalization() throws {
        let dir = try TempDir()
        let onnx = dir.path + "/fashion.onnx"
        let export = try CLIProcess.loupe(["export", "--model", E2E.root + "/models/fashion", "--output", onnx])
        try #require(export.status == 0, "\(export.output)")
        let out = dir.path + "/m.loupe"
        let r = try CLIProcess.loupe(["import", onnx, "--scale", "0.0078125", "--offset", "-1", "--output", out])
        #expect(r.status == 0, "\(r.output)")
        #expect(try ModelFile.read(path: out).header.normalization == Normalization(scale: 0.0078125, offset: -1))
        for (option, value) in [("--scale", "nan"), ("--scale", "0"), ("--scale", "inf"), ("--offset", "-inf"), ("--offset", "nan")] {
            let bad = try CLIProcess.loupe(["import", onnx, option, value, "--output", dir.path + "/bad.loupe"])
            #expect(bad.status == 64, "\(option) \(value): \(bad.output)")
            #expect(bad.stderr.contains("\(option) must be"), "\(option) \(value): \(bad.stderr)")
        }
        #expect(!FileIO.isRegularFile(dir.path + "/bad.loupe"))
        // Published into a repository, history.json names the file imported, exactly, as JSON (before: the part
        // before the first dot + ".onnx", and a quote in the name made the file invalid JSON).
        let odd = dir.path + "/fa\"shion.v2.onnx"
        try FileIO.writeAtomically(try FileIO.readFile(onnx), to: odd)
        let published = try CLIProcess.loupe(["import", odd, "--name", "imported", "--repository", dir.path + "/models"])
        #expect(published.status == 0, "\(published.output)")
        struct ImportHistory: Decodable, Equatable { var imported_from: String; var opset: Int; var input_layout: String }
        let history = try JSONDecoder().decode(ImportHistory.self, from: Data(try FileIO.readFile(dir.path + "/models/imported/1/history.json")))
        #expect(history == ImportHistory(imported_from: "fa\"shion.v2.onnx", opset: 17, input_layout: "NHWC"))
    }

    @Test func predictClassifiesTheGoodFilesAndNamesTheBadOnes() throws {
        let dir = try TempDir()
        try dir.write("photo.jpg", [0xFF, 0xD8, 0xFF, 0xE0, 0, 16] + Array("JFIF".utf8))
        try dir.write("notes.txt", Array("hello".utf8))
        let good = E2E.root + "/examples/images/0-ankle-boot.png"
        let r = try CLIProcess.loupe(["predict", "--model", E2E.root + "/models/fashion", good, dir.path + "/photo.jpg", dir.path + "/notes.txt"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("0-ankle-boot.png") && r.stdout.contains("Ankle boot"), "\(r.stdout)")
        #expect(r.stderr.contains("photo.jpg: Invalid JPEG image: the file ends inside the APP0 segment (16 bytes declared, 6 present); it is truncated."), "\(r.stderr)")
        #expect(r.stderr.contains("notes.txt: Unsupported image format"), "\(r.stderr)")
    }
}

extension String {
    var trimmingSuffixNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}
