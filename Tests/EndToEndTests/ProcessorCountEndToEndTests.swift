import Glibc
import Testing

/// `loupe serve` with "0 = one per CPU" settings, started on one CPU of the machine (taskset, as a cpuset
/// or `docker run --cpuset-cpus` would): one inference worker, not one per online CPU of the node.
@Suite struct ProcessorCountEndToEndTests {
    @Test(.enabled(if: access("/usr/bin/taskset", X_OK) == 0, "needs util-linux taskset"))
    func serveOnOneCPUStartsOneWorker() throws {
        let repo = try E2E.makeRepository()
        let logDir = try TempDir()
        let process = try ChildProcess(["/usr/bin/taskset", "-c", "0", try E2E.binary(), "serve", "--models", repo.path,
                                        "--host", "127.0.0.1", "--port", "0", "--log-format", "json"],
                                       environment: [:], logPath: logDir.path + "/serve.log")
        let line = try #require(process.waitForLine(containing: "\"msg\":\"listening\""), "\(process.log)")
        #expect(line.contains("\"workers\":\"1\"") || line.contains("\"workers\":1"), "\(line)")
    }
}
