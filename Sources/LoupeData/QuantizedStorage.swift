import LoupeEngine

// The data section of a quantized (version-2) model file, docs/model-format.md §12: the tensors in
// table order, the weights of every quantized layer as int8 (one byte per value, the layer's
// per-output-channel scales in the header), all other tensors (biases) as float32; each tensor
// starts at the next multiple of 4 bytes. The float view (`ModelFile.parameters`) holds q · scale.

struct StoredTensor {
    var entry: TensorEntry
    var byteOffset: Int
    /// The per-output-channel scales of an int8 tensor (nil: float32).
    var scales: [Float]?
    var byteCount: Int { scales == nil ? 4 * entry.count : entry.count }
}

extension ModelFile {
    /// The storage of each tensor of a quantized file, checked against what the header says about it.
    static func storedTensors(header: ModelHeader, quantization q: QuantizationParameters) throws -> [StoredTensor] {
        func fail(_ s: String) -> LoupeDataError { .modelFile(path: nil, problem: .invalidHeader(s)) }
        let (expected, _) = try layout(of: header.architecture)
        guard header.tensors.count == expected.count else {
            throw LoupeDataError.modelFile(path: nil, problem: .shapeMismatch("the architecture has \(expected.count) tensors, the file lists \(header.tensors.count)"))
        }
        let scales = Dictionary(q.layers.map { ("\($0.name).weight", $0.weightScales) }, uniquingKeysWith: { a, _ in a })
        var offset = 0
        var result: [StoredTensor] = []
        for (have, want) in zip(header.tensors, expected) {
            guard have.name == want.name, have.shape == want.shape else {
                throw LoupeDataError.modelFile(path: nil, problem: .shapeMismatch("tensor '\(have.name)' is not the '\(want.name)' \(want.shape) the architecture needs"))
            }
            let s = scales[want.name]
            if let s, s.count != want.shape.last { throw fail("\(want.name) has \(want.shape.last ?? 0) output channels but \(s.count) weight scales") }
            let dtype = s == nil ? "float32" : "int8"
            guard have.dtype == dtype else { throw fail("tensor '\(have.name)' must have dtype \(dtype), the file says \(have.dtype ?? "nothing")") }
            guard have.byteOffset == offset else { throw fail("tensor '\(have.name)' must start at byte \(offset) of the data section, the file says \(have.byteOffset.map(String.init) ?? "nothing")") }
            let t = StoredTensor(entry: want, byteOffset: offset, scales: s)
            result.append(t)
            offset = (offset + t.byteCount + 3) / 4 * 4
        }
        guard scales.keys.allSatisfy({ name in expected.contains { $0.name == name } }) else {
            throw fail("the quantization names a layer the architecture does not have")
        }
        return result
    }

    /// Bytes of the data section: the end of the last tensor, rounded up to 4.
    static func dataBytes(_ storage: [StoredTensor]) -> Int {
        storage.last.map { ($0.byteOffset + $0.byteCount + 3) / 4 * 4 } ?? 0
    }

    /// The tensor table of a quantized model as the file stores it (dtype and byteOffset filled in).
    static func quantizedTensorEntries(_ entries: [TensorEntry], quantization q: QuantizationParameters) -> [TensorEntry] {
        let int8 = Set(q.layers.map { "\($0.name).weight" })
        var offset = 0
        return entries.map { e in
            var e = e
            let isInt8 = int8.contains(e.name)
            e.dtype = isInt8 ? "int8" : "float32"
            e.byteOffset = offset
            offset = (offset + (isInt8 ? 1 : 4) * e.count + 3) / 4 * 4
            return e
        }
    }

    static func readStored(_ storage: [StoredTensor], bytes: [UInt8], dataOffset: Int, into parameters: inout [Float]) {
        for t in storage {
            let base = dataOffset + t.byteOffset, first = t.entry.offset
            if let scales = t.scales {
                let outputs = scales.count
                for i in 0..<t.entry.count { parameters[first + i] = Float(Int8(bitPattern: bytes[base + i])) * scales[i % outputs] }
            } else {
                for i in 0..<t.entry.count { parameters[first + i] = Float(bitPattern: readUInt32(bytes, base + 4 * i)) }
            }
        }
    }

    static func writeStored(_ storage: [StoredTensor], parameters: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: dataBytes(storage))
        for t in storage {
            let base = t.byteOffset, first = t.entry.offset
            if let scales = t.scales {
                let outputs = scales.count
                for i in 0..<t.entry.count {
                    out[base + i] = UInt8(bitPattern: QuantizationMath.quantizeWeight(parameters[first + i], scale: scales[i % outputs]))
                }
            } else {
                for i in 0..<t.entry.count {
                    let v = parameters[first + i].bitPattern
                    for k in 0..<4 { out[base + 4 * i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
                }
            }
        }
        return out
    }
}
