// The files of one captured set (see Capture.swift): the IDX images and labels of the labelled
// records, the images and predicted classes of the unlabelled ones, and the capture.json sidecar;
// the set's name, and the sets already on disk (for rotation after a restart).
import Glibc
import LoupeData

extension CaptureStore {
    /// The set's files, and how many records are labelled and unlabelled.
    static func setFiles(model: String, records: [Record]) -> (files: [(name: String, bytes: [UInt8])], labelled: Int, unlabelled: Int) {
        let labelled = records.filter { $0.label != nil }
        let unlabelled = records.filter { $0.label == nil }
        let shape = records[0].shape
        var files: [(name: String, bytes: [UInt8])] = []
        // The images as the server sees them (InferenceModel.imageHeight/Width/Channels): a flat [n] input is
        // 1 × n, [h, w] is h × w; rank 3 (count, rows, cols) for one channel, rank 4 with the channels —
        // the two image files IDXDataset (so `loupe train --data`) reads.
        let height = shape.count >= 2 ? shape[0] : 1
        let width = shape.count >= 2 ? shape[1] : shape.reduce(1, *)
        let channels = shape.count >= 3 ? shape[2...].reduce(1, *) : 1
        let imageDims = channels == 1 ? [height, width] : [height, width, channels]
        let imageSuffix = channels == 1 ? "idx3-ubyte" : "idx4-ubyte"
        if !labelled.isEmpty {
            files.append(("train-images-" + imageSuffix, IDXFile.encode(dimensions: [labelled.count] + imageDims, data: labelled.flatMap(\.pixels))))
            files.append(("train-labels-idx1-ubyte", IDXFile.encode(dimensions: [labelled.count], data: labelled.map { UInt8(clamping: $0.label!) })))
        }
        if !unlabelled.isEmpty {
            files.append(("unlabelled-images-" + imageSuffix, IDXFile.encode(dimensions: [unlabelled.count] + imageDims, data: unlabelled.flatMap(\.pixels))))
            files.append(("unlabelled-predictions-idx1-ubyte", IDXFile.encode(dimensions: [unlabelled.count], data: unlabelled.map { UInt8(clamping: $0.predicted) })))
        }
        files.append(("capture.json", sidecar(model: model, shape: shape, labelled: labelled, unlabelled: unlabelled)))
        return (files, labelled.count, unlabelled.count)
    }

    /// `20261204T053000Z-000001`: sorts in time order.
    static func setName(wallClock: Double, sequence: Int) -> String {
        let iso = TrainingMetadata.iso8601(secondsSince1970: wallClock)   // 2026-12-04T05:30:00Z
        let n = String(sequence)
        return iso.replacingOccurrences("-", "").replacingOccurrences(":", "") + "-" + String(repeating: "0", count: max(0, 6 - n.count)) + n
    }

    static func sidecar(model: String, shape: [Int], labelled: [Record], unlabelled: [Record]) -> [UInt8] {
        var w = JSONWriter(capacity: 256 + (labelled.count + unlabelled.count) * 160)
        w.raw("{"); w.key("model"); w.string(model)
        w.raw(","); w.key("image_shape"); w.raw("["); w.raw(shape.map(String.init).joined(separator: ",")); w.raw("]")
        w.raw(","); w.key("labelled"); w.int(labelled.count)
        w.raw(","); w.key("unlabelled"); w.int(unlabelled.count)
        for (key, list) in [("train", labelled), ("unlabelled", unlabelled)] {
            w.raw(","); w.key(key); w.raw("[")
            for (i, r) in list.enumerated() {
                if i > 0 { w.raw(",") }
                w.raw("{"); w.key("request_id"); w.string(r.requestID)
                w.raw(","); w.key("image"); w.int(r.index)
                w.raw(","); w.key("model_version"); w.int(r.version)
                w.raw(","); w.key("timestamp"); w.string(TrainingMetadata.iso8601(secondsSince1970: r.timestamp))
                w.raw(","); w.key("predicted"); w.int(r.predicted)
                w.raw(","); w.key("confidence"); w.float(r.confidence)
                if let l = r.label { w.raw(","); w.key("label"); w.int(l) }
                w.raw("}")
            }
            w.raw("]")
        }
        w.raw("}\n")
        return w.bytes
    }

    /// Sets already under `root` (`<root>/<model>/<set>/`), oldest first by name, with their sizes.
    static func existingSets(root: String) -> [(path: String, bytes: Int)] {
        var out: [(String, Int, String)] = []
        for model in (try? RepositoryFileSystem.list(root)) ?? [] where !model.hasPrefix(".") {
            FileIO.removeStaleTemporaries(in: root + "/" + model)
            for set in (try? RepositoryFileSystem.list(root + "/" + model)) ?? [] where !set.hasPrefix(".") {
                let path = root + "/" + model + "/" + set
                var bytes = 0
                for f in (try? RepositoryFileSystem.list(path)) ?? [] {
                    var st = stat()
                    if stat(path + "/" + f, &st) == 0 { bytes += Int(st.st_size) }
                }
                out.append((path, bytes, set))
            }
        }
        return out.sorted { $0.2 < $1.2 }.map { ($0.0, $0.1) }
    }
}
