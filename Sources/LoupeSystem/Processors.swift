// How many CPUs this process may use: what "0 = one per CPU" settings resolve to.
#if canImport(Glibc)
import Glibc
#endif
import CLoupeSystem

/// CPUs this process may run on: the scheduler's affinity mask (taskset, a cpuset) capped by the
/// CPU quota of the process's cgroup (v2 `cpu.max`, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`:
/// `docker run --cpus`, Kubernetes `limits.cpu`), rounded up to whole CPUs; at least 1. The online CPU count alone would be the
/// node's, so a container limited to one CPU on a 64-CPU node would start 64 event loops and
/// workers that the quota then throttles.
public func availableProcessorCount() -> Int {
    var count = Int(cloupe_affinity_cpu_count())
    if count <= 0 { count = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
    if let quota = cgroupCPUQuota() { count = min(count, quota) }
    return max(1, count)
}

/// Whole CPUs a cgroup v2 `cpu.max` text allows ("QUOTA PERIOD", or "max PERIOD" for no limit),
/// rounded up; nil when there is no limit or the text is not that form.
public func cpuQuotaCPUs(_ cpuMax: String) -> Int? {
    let fields = cpuMax.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
    guard fields.count == 2, fields[0] != "max", let quota = Int(fields[0]), let period = Int(fields[1]),
          quota > 0, period > 0 else { return nil }
    return max(1, (quota + period - 1) / period)
}

/// The cgroup path of this process in the unified (v2) hierarchy, from /proc/self/cgroup's "0::PATH" line.
package func cgroupV2Path(_ procSelfCgroup: String) -> String? {
    for line in procSelfCgroup.split(separator: "\n") where line.hasPrefix("0::") {
        return String(line.dropFirst(3))
    }
    return nil
}

/// cgroup files are a line or two: read no more than this of one.
private let cgroupFileLimit = 64 * 1024

private func readSmallTextFile(_ path: String) -> String? { try? readTextFile(path, limit: cgroupFileLimit) }

private func cgroupCPUQuota() -> Int? {
    if let own = readSmallTextFile("/proc/self/cgroup").flatMap(cgroupV2Path) {
        // Inside a cgroup namespace (a container's default) the process's cgroup is the root "/".
        for dir in ["/sys/fs/cgroup" + (own == "/" ? "" : own), "/sys/fs/cgroup"] {
            if let text = readSmallTextFile(dir + "/cpu.max") { return cpuQuotaCPUs(text) }
        }
    }
    // cgroup v1 (older hosts): the container's CFS quota and period in the cpu controller's mount
    // ("-1" quota: no limit).
    for dir in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"] {
        if let quota = readSmallTextFile(dir + "/cpu.cfs_quota_us"), let period = readSmallTextFile(dir + "/cpu.cfs_period_us") {
            return cpuQuotaCPUs(quota.filter { $0 != "\n" } + " " + period.filter { $0 != "\n" })
        }
    }
    return nil
}
