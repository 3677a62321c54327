// Ranking against its plain reference: a full sort by (score descending, index ascending).
import Testing
@testable import LoupeEngine

@Suite struct RankingTests {
    private func reference(_ row: [Float]) -> [Int] {
        row.indices.sorted { a, b in row[a] != row[b] ? row[a] > row[b] : a < b }
    }

    @Test func topAgreesWithTheSortOnArraysSlicesAndOtherCollections() {
        var rng = SystemRandomNumberGenerator()
        for n in [1, 2, 3, 7, 10, 17, 64] {
            for _ in 0..<40 {
                // Few distinct values, so ties are common; the lower index must win them.
                let row = (0..<n).map { _ in Float(Int.random(in: 0..<4, using: &rng)) / 4 }
                let expected = reference(row)
                #expect(Ranking.argmax(row) == expected[0])
                for k in 0...n {
                    var order = [Int](repeating: -1, count: n)
                    Ranking.top(k, of: row, into: &order)
                    #expect(Array(order[0..<k]) == Array(expected[0..<k]), "array n=\(n) k=\(k) \(row)")
                    // A slice that does not start at 0 (a row of a batch), and a non-contiguous collection.
                    let batch = [Float](repeating: 9, count: 5) + row
                    Ranking.top(k, of: batch[5...], into: &order)
                    #expect(Array(order[0..<k]) == Array(expected[0..<k]), "slice n=\(n) k=\(k)")
                    Ranking.top(k, of: row.lazy.map { $0 }, into: &order)
                    #expect(Array(order[0..<k]) == Array(expected[0..<k]), "lazy n=\(n) k=\(k)")
                }
                #expect(Ranking.ranked(row) == expected)
            }
        }
    }
}
