// The standard process_* metrics of Prometheus client libraries, read from /proc at scrape time:
// CPU seconds, resident and virtual memory, open and maximum file descriptors, start time.
#if canImport(Glibc)
import Glibc
#endif

enum ProcessMetrics {
    static func register(on registry: MetricsRegistry) {
        let startTime = processStartTimeSeconds()
        registry.addCollector { w in
            let stat = readSelfStat()
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            if let stat {
                w.family("process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.", kind: .counter)
                w.sample("process_cpu_seconds_total", value: (stat.utime + stat.stime) / ticks)
                w.family("process_virtual_memory_bytes", help: "Virtual memory size in bytes.", kind: .gauge)
                w.sample("process_virtual_memory_bytes", value: stat.vsize)
                w.family("process_resident_memory_bytes", help: "Resident memory size in bytes.", kind: .gauge)
                w.sample("process_resident_memory_bytes", value: stat.rss * Double(sysconf(Int32(_SC_PAGESIZE))))
            }
            w.family("process_open_fds", help: "Number of open file descriptors.", kind: .gauge)
            w.sample("process_open_fds", value: Double(openFileDescriptorCount()))
            var limit = rlimit()
            if getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 {
                w.family("process_max_fds", help: "Maximum number of open file descriptors.", kind: .gauge)
                w.sample("process_max_fds", value: Double(limit.rlim_cur))
            }
            if let startTime {
                w.family("process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.", kind: .gauge)
                w.sample("process_start_time_seconds", value: startTime)
            }
        }
    }

    struct SelfStat { var utime: Double; var stime: Double; var starttime: Double; var vsize: Double; var rss: Double }

    /// Fields of /proc/self/stat after the `(comm)` field (which may contain spaces).
    static func readSelfStat() -> SelfStat? {
        guard let bytes = try? readFileBytes("/proc/self/stat", limit: 4096),
              let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let rest = String(decoding: bytes[(close + 1)...], as: UTF8.self)
        let fields = rest.split(separator: " ")
        // fields[0] is field 3 (state); utime = field 14, stime 15, starttime 22, vsize 23, rss 24.
        func field(_ n: Int) -> Double { fields.count > n - 3 ? Double(fields[n - 3]) ?? 0 : 0 }
        return SelfStat(utime: field(14), stime: field(15), starttime: field(22), vsize: field(23), rss: field(24))
    }

    static func processStartTimeSeconds() -> Double? {
        guard let stat = readSelfStat(), let text = try? readTextFile("/proc/stat") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            if let boot = Double(String(line.dropFirst(6)).trimmingLeadingSpaces()) {
                return boot + stat.starttime / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        return nil
    }

    static func openFileDescriptorCount() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let first = withUnsafeBytes(of: entry.pointee.d_name) { $0[0] }
            if first != UInt8(ascii: ".") { count += 1 }
        }
        return max(0, count - 1)  // minus the directory stream's own descriptor
    }

    /// Resident set size in bytes now (for logs and tests).
    static func residentBytes() -> Double {
        (readSelfStat()?.rss ?? 0) * Double(sysconf(Int32(_SC_PAGESIZE)))
    }
}

#if canImport(Glibc)
private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
#endif

