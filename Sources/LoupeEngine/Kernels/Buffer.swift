// Owned, 64-byte aligned float storage for workspaces, gradients and optimizer moments.
// All pointer code of the engine lives in this folder; nothing here is public API.
import Glibc

package final class FloatBuffer: @unchecked Sendable {
    package let base: UnsafeMutablePointer<Float>
    package let count: Int

    package init(count: Int) {
        self.count = count
        base = alignedZeroed(Float.self, count: count)
    }

    package convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { base.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { free(base) }

    package func zero() { base.update(repeating: 0, count: count) }
    package func copy(from values: [Float]) {
        precondition(values.count == count)
        values.withUnsafeBufferPointer { base.update(from: $0.baseAddress!, count: count) }
    }
    package func array(offset: Int = 0, count n: Int? = nil) -> [Float] {
        let n = n ?? count - offset
        return Array(UnsafeBufferPointer(start: base + offset, count: n))
    }
    package subscript(i: Int) -> Float {
        get { base[i] }
        set { base[i] = newValue }
    }
}

package final class ByteBuffer: @unchecked Sendable {
    package let base: UnsafeMutablePointer<UInt8>
    package let count: Int
    package init(count: Int) {
        self.count = count
        base = alignedZeroed(UInt8.self, count: count)
    }
    deinit { free(base) }
}

package final class IndexBuffer: @unchecked Sendable {
    package let base: UnsafeMutablePointer<Int32>
    package let count: Int
    package init(count: Int) {
        self.count = count
        base = alignedZeroed(Int32.self, count: count)
    }
    deinit { free(base) }
}

/// The storage of FloatBuffer, ByteBuffer and IndexBuffer: `count` zeros of `T` in 64-byte-aligned memory
/// rounded up to whole 64-byte lines (one at least), freed with `free`.
private func alignedZeroed<T: AdditiveArithmetic>(_: T.Type, count: Int) -> UnsafeMutablePointer<T> {
    var raw: UnsafeMutableRawPointer?
    let bytes = max(64, (count * MemoryLayout<T>.stride + 63) & ~63)
    guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("out of memory (\(bytes) bytes)") }
    let base = raw.bindMemory(to: T.self, capacity: max(count, 64 / MemoryLayout<T>.stride))
    base.initialize(repeating: .zero, count: count)
    return base
}

/// Runs `body(shard, start, count)` for `threads` contiguous shards of `n` items.
/// Shard boundaries depend only on (n, threads), so results are reproducible for a fixed thread count.
package func forEachShard(_ n: Int, threads: Int, _ body: (Int, Int, Int) -> Void) {
    let t = max(1, min(threads, n))
    if t == 1 { body(0, 0, n); return }
    DispatchQueueShim.concurrentPerform(iterations: t) { s in
        let start = s * n / t, end = (s + 1) * n / t
        body(s, start, end - start)
    }
}

/// a · b, or Int.max when the product overflows (sizes computed from shapes before anything is allocated).
package func saturatingProduct(_ a: Int, _ b: Int) -> Int {
    let (p, overflow) = a.multipliedReportingOverflow(by: b)
    return overflow ? Int.max : p
}

/// Byte total of buffers (count × element size each) that saturates at Int.max instead of overflowing.
package struct ByteTally: Sendable, Equatable {
    package private(set) var bytes = 0
    package init() {}
    package mutating func add(_ count: Int, bytesEach: Int) {
        let (s, overflow) = bytes.addingReportingOverflow(saturatingProduct(count, bytesEach))
        bytes = overflow ? Int.max : s
    }
}
