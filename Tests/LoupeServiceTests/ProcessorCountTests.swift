import Testing
#if canImport(Glibc)
import Glibc
#endif

/// "0 = one per CPU" settings resolve to the CPUs the process may use (LoupeSystem/Processors.swift):
/// its affinity mask capped by a cgroup v2 CPU quota, not the node's online CPUs.
@Suite struct ProcessorCountTests {
    @Test func cgroupQuotaTextGivesWholeCPUsRoundedUp() {
        #expect(cpuQuotaCPUs("max 100000\n") == nil)
        #expect(cpuQuotaCPUs("100000 100000\n") == 1)
        #expect(cpuQuotaCPUs("150000 100000\n") == 2)
        #expect(cpuQuotaCPUs("50000 100000") == 1)          // Kubernetes 500m: one loop, not zero
        #expect(cpuQuotaCPUs("400000 100000") == 4)
        #expect(cpuQuotaCPUs("") == nil)
        #expect(cpuQuotaCPUs("garbage") == nil)
        #expect(cpuQuotaCPUs("-1 100000") == nil)
        #expect(cpuQuotaCPUs("100000 0") == nil)
    }

    @Test func theUnifiedCgroupPathIsTheZeroLine() {
        #expect(cgroupV2Path("0::/\n") == "/")
        #expect(cgroupV2Path("0::/kubepods/pod1/abc\n") == "/kubepods/pod1/abc")
        #expect(cgroupV2Path("12:cpu,cpuacct:/docker/x\n1:name=systemd:/\n0::/system.slice/loupe.service\n") == "/system.slice/loupe.service")
        #expect(cgroupV2Path("12:cpu,cpuacct:/docker/x\n") == nil)   // cgroup v1 only: no quota read
    }

    @Test func theCountIsTheAffinityMaskCappedByTheQuota() throws {
        // coreutils' nproc counts the affinity mask (it ignores cgroup quotas): the reference here.
        let r = runProcess(["/usr/bin/nproc"])
        let affinity = try #require(Int(r.output.filter { $0.isNumber }), "\(r.output)")
        let available = availableProcessorCount()
        #expect(available >= 1)
        #expect(available <= affinity)
        #expect(available <= Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }
}
