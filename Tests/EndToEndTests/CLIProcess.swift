import Glibc
import LoupeData

/// Runs the real `loupe` binary (or any program) with stdout/stderr captured in temp files.
struct CLIProcess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var output: String { stdout + stderr }
    }

    /// The `loupe` binary: $LOUPE_BINARY, else next to the test bundle (.build/<config>/loupe).
    static let loupePath: String = {
        if let env = getenv("LOUPE_BINARY") { return String(cString: env) }
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        var dir = FileIO.directoryName(exe)
        // The bundle may be .build/debug/LoupePackageTests.xctest[/Contents/MacOS/...].
        while !dir.isEmpty && dir != "/" {
            if FileIO.isRegularFile(dir + "/loupe") { return dir + "/loupe" }
            dir = FileIO.directoryName(dir)
        }
        return FileIO.directoryName(exe) + "/loupe"
    }()

    /// The repository root (for scripts/ and Config/), from this file's path.
    static let repositoryRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = FileIO.directoryName(path) }
        return path
    }()

    let pid: pid_t
    let outPath: String
    let errPath: String

    /// Starts `program` with `arguments` in `directory`.
    static func start(_ program: String, _ arguments: [String], directory: String? = nil) throws -> CLIProcess {
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let outPath = "/tmp/loupe-e2e-\(tag).out", errPath = "/tmp/loupe-e2e-\(tag).err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var program = program, arguments = arguments
        if let directory {   // no posix_spawn_file_actions_addchdir_np in Swift's Glibc: go through sh
            arguments = ["-c", "cd \"$0\" && exec \"$@\"", directory, program] + arguments
            program = "/bin/sh"
        }
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, program, &actions, nil, argv, environ)
        guard rc == 0 else { throw LoupeDataError.io(path: program, operation: "posix_spawn", errno: rc) }
        return CLIProcess(pid: pid, outPath: outPath, errPath: errPath)
    }

    /// Runs to completion (killed after `timeout` seconds, status then 137).
    static func run(_ program: String, _ arguments: [String], directory: String? = nil, timeout: Double = 900) throws -> Result {
        try start(program, arguments, directory: directory).wait(timeout: timeout)
    }

    static func loupe(_ arguments: [String], directory: String? = nil) throws -> Result {
        try run(loupePath, arguments, directory: directory)
    }

    func stdoutSoFar() -> String { (try? FileIO.readFile(outPath)).map { String(decoding: $0, as: UTF8.self) } ?? "" }

    func signal(_ sig: Int32) { kill(pid, sig) }

    func wait(timeout: Double) throws -> Result {
        var status: Int32 = 0
        var waited = 0.0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { throw LoupeDataError.io(path: "child", operation: "waitpid", errno: errno) }
            if waited > timeout { kill(pid, SIGKILL) }
            usleep(20_000)
            waited += 0.02
        }
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let out = String(decoding: (try? FileIO.readFile(outPath)) ?? [], as: UTF8.self)
        let err = String(decoding: (try? FileIO.readFile(errPath)) ?? [], as: UTF8.self)
        unlink(outPath)
        unlink(errPath)
        return Result(status: code, stdout: out, stderr: err)
    }
}
