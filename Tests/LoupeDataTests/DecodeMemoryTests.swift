// Memory a decode may hold: it follows the bytes that actually inflate, never the size a header
// claims, and it is reserved from a shared budget that refuses past its allowance.
import Testing
@testable import LoupeData

@Suite struct DecodeMemoryTests {
    /// The hostile-client case: IHDR says 4096×4096, 16-bit RGBA (134 MB of raw data), the IDAT
    /// is 20 bytes. The decode fails as truncated having reserved (and so held) only a window.
    static func claimsHuge() -> [UInt8] {
        let idat = Deflate.zlib([UInt8](repeating: 0, count: 4000))
        return PNGDecoder.signature + PNGWriter.ihdr(width: 4096, height: 4096, depth: 16, colorType: 6)
            + PNGWriter.chunk("IDAT", Array(idat.prefix(20))) + PNGWriter.chunk("IEND", [])
    }

    @Test func aHeaderThatClaimsMoreThanTheDataHoldsFailsWithoutReservingIt() throws {
        let budget = DecodeBudget(limit: 1 << 20)   // 1 MiB: far below what the header claims
        #expect(throws: LoupeDataError.self) { _ = try ImageDecoder.decode(Self.claimsHuge(), budget: budget) }
        do {
            _ = try ImageDecoder.decode(Self.claimsHuge(), budget: budget)
        } catch {
            // Truncated data, not an exhausted budget: nothing near the claimed size was asked for.
            #expect("\(error)".contains("truncated") || "\(error)".contains("image data"), "\(error)")
        }
        #expect(budget.inUse == 0)
    }

    @Test func everyTruncationOfAValidImageFailsCleanlyAndReleasesItsReservation() throws {
        let budget = DecodeBudget(limit: 1 << 20)
        let whole = PNGWriter.gray(width: 40, height: 30, filter: 2)
        #expect(try ImageDecoder.decode(whole, budget: budget).pixels.count == 1200)
        for cut in 8..<whole.count {
            #expect(throws: LoupeDataError.self) { _ = try ImageDecoder.decode(Array(whole.prefix(cut)), budget: budget) }
        }
        // An IDAT cut short but with a valid CRC (the data itself ends early), at every length.
        let raw = (0..<30).flatMap { y in [UInt8(0)] + (0..<40).map { UInt8(($0 + y) % 256) } }
        let compressed = Deflate.zlib(raw)
        for n in 2..<compressed.count {
            let png = PNGDecoder.signature + PNGWriter.ihdr(width: 40, height: 30)
                + PNGWriter.chunk("IDAT", Array(compressed.prefix(n))) + PNGWriter.chunk("IEND", [])
            #expect(throws: LoupeDataError.self) { _ = try ImageDecoder.decode(png, budget: budget) }
        }
        #expect(budget.inUse == 0)
    }

    @Test func aRealImageLargerThanTheBudgetIsRefusedAsBusyNotAsInvalid() throws {
        let png = PNGWriter.gray(width: 600, height: 600)   // 360,000 pixels
        let small = DecodeBudget(limit: 200_000)
        #expect(throws: LoupeDataError.decodeBudgetExhausted(limit: 200_000)) { _ = try ImageDecoder.decode(png, budget: small) }
        #expect(small.inUse == 0)
        // Another decode holding the allowance makes the same image wait its turn…
        let shared = DecodeBudget(limit: 1 << 20)
        #expect(shared.reserve(900_000))
        #expect(throws: LoupeDataError.decodeBudgetExhausted(limit: 1 << 20)) { _ = try ImageDecoder.decode(png, budget: shared) }
        // …and succeeds once it is given back.
        shared.release(900_000)
        #expect(try ImageDecoder.decode(png, budget: shared).pixels.count == 360_000)
        #expect(shared.inUse == 0)
    }

    @Test func interlacedImagesReserveTheirScatterBufferToo() throws {
        let png = try fixture("gray8_adam7.png")
        let expected = try ImageDecoder.decode(try fixture("gray8_adam7.expected.pgm"))
        let budget = DecodeBudget(limit: 1 << 20)
        #expect(try ImageDecoder.decode(png, budget: budget) == expected)
        #expect(budget.inUse == 0)
        // 13×11 = 143 pixels: the pass buffer and the scatter buffer need 286 bytes; with less,
        // the decode is refused as busy.
        let tight = DecodeBudget(limit: 200)
        #expect(throws: LoupeDataError.decodeBudgetExhausted(limit: 200)) { _ = try ImageDecoder.decode(png, budget: tight) }
    }

    @Test func aTextPGMThatClaimsMoreSamplesThanItsBytesIsRefusedBeforeAllocating() throws {
        let p2 = Array("P2\n4096 4096\n255\n1 2 3\n".utf8)
        let budget = DecodeBudget(limit: 1 << 16)
        do {
            _ = try ImageDecoder.decode(p2, budget: budget)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("truncated"), "\(error)")
        }
        #expect(budget.inUse == 0)
    }

    @Test func declaredSizesPastTheLimitsAreTooLargeNotInvalid() throws {
        let png = PNGDecoder.signature + PNGWriter.ihdr(width: 5000, height: 10) + PNGWriter.chunk("IEND", [])
        #expect(throws: LoupeDataError.imageTooLarge(width: 5000, height: 10, limit: "at most 4096 pixels per side and 16777216 pixels")) {
            _ = try ImageDecoder.decode(png)
        }
    }
}
