// The one ranking of class scores in the project (server responses, prediction metrics, the CLI,
// evaluation, golden samples): highest score first, ties broken by the lower class index, so
// every consumer agrees on the top class of the same row.

public enum Ranking {
    /// Index (0-based, relative to the row's start) of the highest score; the first one on ties.
    @inlinable
    public static func argmax<Row: RandomAccessCollection>(_ row: Row) -> Int where Row.Element == Float {
        var best = row.startIndex
        var i = row.index(after: best)
        while i < row.endIndex {
            if row[i] > row[best] { best = i }
            i = row.index(after: i)
        }
        return row.distance(from: row.startIndex, to: best)
    }

    /// Fills `order[0..<k]` with the indices of the `k` highest scores, highest first (ties: lower
    /// index first). `order` must hold `row.count` elements; its tail is left in no set order.
    /// Small `k` takes a selection pass per place (no sort, no allocation).
    public static func top<Row: RandomAccessCollection>(_ k: Int, of row: Row, into order: inout [Int]) where Row.Element == Float {
        // Over contiguous scores (arrays and their slices: every caller) the non-generic loop
        // runs; a generic body captured by a local function boxed its indices on the heap, ~20
        // allocations per ranked row.
        if let done: Void = row.withContiguousStorageIfAvailable({ top(k, of: $0, into: &order) }) { return done }
        let copy = Array(row)
        copy.withUnsafeBufferPointer { top(k, of: $0, into: &order) }
    }

    /// `top` over a buffer of scores.
    public static func top(_ k: Int, of scores: UnsafeBufferPointer<Float>, into order: inout [Int]) {
        order.withUnsafeMutableBufferPointer { top(k, of: scores, into: $0) }
    }

    /// `top` into caller memory (at least `scores.count` entries; a response writer's scratch).
    public static func top(_ k: Int, of scores: UnsafeBufferPointer<Float>, into order: UnsafeMutableBufferPointer<Int>) {
        let n = scores.count
        precondition(order.count >= n && k <= n)
        for j in 0..<n { order[j] = j }
        guard k > 0 else { return }
        if k <= 8 {
            for j in 0..<k {
                var best = j
                var m = j + 1
                while m < n {
                    let pm = scores[order[m]], pb = scores[order[best]]
                    if pm > pb || (pm == pb && order[m] < order[best]) { best = m }
                    m += 1
                }
                if best != j { order.swapAt(j, best) }
            }
        } else {
            var head = UnsafeMutableBufferPointer(rebasing: order[0..<n])
            head.sort { a, b in
                let pa = scores[a], pb = scores[b]
                return pa != pb ? pa > pb : a < b
            }
        }
    }

    /// All indices, highest score first.
    public static func ranked<Row: RandomAccessCollection>(_ row: Row) -> [Int] where Row.Element == Float {
        var order = [Int](repeating: 0, count: row.count)
        top(row.count, of: row, into: &order)
        return order
    }
}
