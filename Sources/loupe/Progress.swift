import Dispatch
import LoupeData
import LoupeEngine
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C handling for long commands: the first SIGINT sets a flag the training loop polls
/// (it stops after the current batch and nothing is written); a second SIGINT exits at once.
/// @unchecked: `source` is only touched in init; the flag is atomic.
final class Interrupt: @unchecked Sendable {
    private let flag = Atomic<Int>(0)
    private let source: DispatchSourceSignal

    init() {
        // Block SIGINT in this (main) thread before the training threads exist, so they all
        // inherit the mask and the kernel keeps the signal pending for Dispatch's source
        // (signalfd on Linux); unblocked, a busy worker thread could take it and drop it.
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGINT)
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            if self.flag.add(1, ordering: .relaxed).newValue >= 2 {
                Terminal.write("\nInterrupted twice: exiting now; nothing was written.\n")
                _exit(130)
            }
        }
        source.resume()
    }

    var requested: Bool { flag.load(ordering: .relaxed) > 0 }
}

/// Training output: a live bar per epoch on a terminal, one plain line per epoch otherwise.
final class TrainingDisplay {
    let interactive: Bool
    private var lastDraw = -1.0
    private var drewBar = false

    init(interactive: Bool) { self.interactive = interactive }

    func batch(_ p: TrainingProgress, epochs: Int) {
        guard interactive else { return }
        let now = p.elapsedSeconds
        guard p.batch == p.batchCount || now - lastDraw >= 0.1 else { return }
        lastDraw = now
        let width = 28
        let done = p.batchCount > 0 ? p.batch * width / p.batchCount : 0
        let bar = String(repeating: "=", count: max(0, done - 1)) + (done > 0 ? (done == width ? "=" : ">") : "") + String(repeating: " ", count: width - done)
        let rate = p.imagesPerSecond
        let eta = rate > 0 ? Double(p.imageCount - p.imagesSeen) / rate : 0
        Terminal.write("\r\u{1B}[2KEpoch \(p.epoch)/\(epochs) [\(bar)] \(p.batch)/\(p.batchCount)  loss \(Format.fixed(p.loss, 4))  acc \(Format.fixed(p.accuracy, 4))  \(Format.grouped(Int(rate))) img/s  ETA \(Format.duration(eta))")
        drewBar = true
    }

    func epoch(_ r: EpochRecord, epochs: Int) {
        if interactive && drewBar { Terminal.write("\r\u{1B}[2K") }
        drewBar = false
        lastDraw = -1
        var line = "epoch \(r.epoch)/\(epochs)  loss \(Format.fixed(r.loss, 4))  accuracy \(Format.fixed(r.accuracy, 4))"
        if let vl = r.valLoss, let va = r.valAccuracy { line += "  val_loss \(Format.fixed(vl, 4))  val_accuracy \(Format.fixed(va, 4))" }
        line += "  \(Format.fixed(r.seconds, 2)) s  \(Format.grouped(Int(r.imagesPerSecond))) images/s"
        Terminal.line(line)
    }

    func clearBar() {
        if interactive && drewBar { Terminal.write("\r\u{1B}[2K") }
        drewBar = false
    }
}
