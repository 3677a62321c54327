import Glibc

// Plain-loop reference kernels. They define what each layer computes; the SIMD kernels are
// tested against them. Parameter gradients are accumulated (+=); activation gradients
// (dInput) are written (=), because each is consumed exactly once.

/// Geometry of a stride-1 convolution in NHWC / HWIO.
package struct ConvGeometry: Sendable, Equatable {
    package var height, width, channels: Int      // input (H, W, C)
    package var filters, kernel: Int              // K, k
    package var padTop, padLeft: Int              // 0 for valid
    package var outHeight, outWidth: Int          // (OH, OW)
    package var relu: Bool
    package var inputSize: Int { height * width * channels }
    package var outputSize: Int { outHeight * outWidth * filters }
    package var weightCount: Int { kernel * kernel * channels * filters }
}

package struct PoolGeometry: Sendable, Equatable {
    package var height, width, channels, pool: Int
    package var outHeight: Int { height / pool }
    package var outWidth: Int { width / pool }
    package var inputSize: Int { height * width * channels }
    package var outputSize: Int { outHeight * outWidth * channels }
}

package enum Reference {
    /// input (N, H, W, C), weight (k, k, C, K), bias (K) → output (N, OH, OW, K); ReLU if g.relu.
    package static func convForward(_ g: ConvGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                    bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
        for b in 0..<n {
            let x = input + b * g.inputSize, y = output + b * g.outputSize
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for f in 0..<g.filters {
                var acc = bias[f]
                for kh in 0..<g.kernel { for kw in 0..<g.kernel {
                    let ih = oh + kh - g.padTop, iw = ow + kw - g.padLeft
                    if ih < 0 || ih >= g.height || iw < 0 || iw >= g.width { continue }
                    for c in 0..<g.channels {
                        acc += x[(ih * g.width + iw) * g.channels + c] * weight[((kh * g.kernel + kw) * g.channels + c) * g.filters + f]
                    }
                }}
                y[(oh * g.outWidth + ow) * g.filters + f] = g.relu ? max(acc, 0) : acc
            }}}
        }
    }

    /// dOutput (N, OH, OW, K) is the gradient w.r.t. the conv's pre-activation (ReLU mask already applied).
    /// dWeight += Σ x ⊗ dOut, dBias += Σ dOut, dInput (optional) = full correlation with the kernel.
    package static func convBackward(_ g: ConvGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                     dOutput: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                                     dBias: UnsafeMutablePointer<Float>, dInput: UnsafeMutablePointer<Float>?) {
        for b in 0..<n {
            let x = input + b * g.inputSize, dy = dOutput + b * g.outputSize
            let dx = dInput.map { $0 + b * g.inputSize }
            dx?.update(repeating: 0, count: g.inputSize)
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for f in 0..<g.filters {
                let d = dy[(oh * g.outWidth + ow) * g.filters + f]
                dBias[f] += d
                for kh in 0..<g.kernel { for kw in 0..<g.kernel {
                    let ih = oh + kh - g.padTop, iw = ow + kw - g.padLeft
                    if ih < 0 || ih >= g.height || iw < 0 || iw >= g.width { continue }
                    for c in 0..<g.channels {
                        let xi = (ih * g.width + iw) * g.channels + c
                        let wi = ((kh * g.kernel + kw) * g.channels + c) * g.filters + f
                        dWeight[wi] += x[xi] * d
                        dx?[xi] += weight[wi] * d
                    }
                }}
            }}}
        }
    }

    /// input (N, H, W, C) → output (N, OH, OW, C), argmax = index (dh·pool + dw) of the first maximum.
    package static func maxPoolForward(_ g: PoolGeometry, n: Int, input: UnsafePointer<Float>,
                                       output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<UInt8>) {
        for b in 0..<n {
            let x = input + b * g.inputSize, y = output + b * g.outputSize, a = argmax + b * g.outputSize
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for c in 0..<g.channels {
                var best = -Float.infinity, bestIndex = 0
                for dh in 0..<g.pool { for dw in 0..<g.pool {
                    let v = x[((oh * g.pool + dh) * g.width + ow * g.pool + dw) * g.channels + c]
                    if v > best { best = v; bestIndex = dh * g.pool + dw }
                }}
                let o = (oh * g.outWidth + ow) * g.channels + c
                y[o] = best; a[o] = UInt8(bestIndex)
            }}}
        }
    }

    /// dInput = 0 except dOutput routed to each window's argmax.
    package static func maxPoolBackward(_ g: PoolGeometry, n: Int, dOutput: UnsafePointer<Float>,
                                        argmax: UnsafePointer<UInt8>, dInput: UnsafeMutablePointer<Float>) {
        dInput.update(repeating: 0, count: n * g.inputSize)
        for b in 0..<n {
            let dy = dOutput + b * g.outputSize, a = argmax + b * g.outputSize, dx = dInput + b * g.inputSize
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth { for c in 0..<g.channels {
                let o = (oh * g.outWidth + ow) * g.channels + c
                let dh = Int(a[o]) / g.pool, dw = Int(a[o]) % g.pool
                dx[((oh * g.pool + dh) * g.width + ow * g.pool + dw) * g.channels + c] += dy[o]
            }}}
        }
    }

    /// x (N, in), weight (in, out), bias (out) → y (N, out); ReLU if relu.
    package static func denseForward(n: Int, inputs: Int, outputs: Int, relu: Bool, x: UnsafePointer<Float>,
                                     weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        for b in 0..<n { for j in 0..<outputs {
            var acc = bias[j]
            for i in 0..<inputs { acc += x[b * inputs + i] * weight[i * outputs + j] }
            y[b * outputs + j] = relu ? max(acc, 0) : acc
        }}
    }

    /// dY (N, out) w.r.t. pre-activation. dWeight += xᵀ·dY, dBias += Σ dY, dX (optional) = dY·weightᵀ.
    package static func denseBackward(n: Int, inputs: Int, outputs: Int, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                      dY: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                                      dBias: UnsafeMutablePointer<Float>, dX: UnsafeMutablePointer<Float>?) {
        for b in 0..<n {
            for j in 0..<outputs { dBias[j] += dY[b * outputs + j] }
            for i in 0..<inputs {
                let xi = x[b * inputs + i]
                var acc: Float = 0
                for j in 0..<outputs {
                    dWeight[i * outputs + j] += xi * dY[b * outputs + j]
                    acc += weight[i * outputs + j] * dY[b * outputs + j]
                }
                dX?[b * inputs + i] = acc
            }
        }
    }

    /// dPre = dOut where out > 0 else 0 (in place), for ReLU outputs.
    package static func reluBackward(count: Int, output: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>) {
        for i in 0..<count where !(output[i] > 0) { gradient[i] = 0 }
    }
}

/// Softmax of each row of logits (N, classes) into probabilities; numerically stable; exp is scalar.
package func softmaxRows(n: Int, classes: Int, logits: UnsafePointer<Float>, probabilities: UnsafeMutablePointer<Float>) {
    for b in 0..<n {
        let z = logits + b * classes, p = probabilities + b * classes
        var m = -Float.infinity
        for j in 0..<classes { m = max(m, z[j]) }
        var s: Float = 0
        for j in 0..<classes { let e = expf(z[j] - m); p[j] = e; s += e }
        let inv = 1 / s
        for j in 0..<classes { p[j] *= inv }
    }
}

/// Softmax cross-entropy: writes dLogits = (p - onehot) · scale, returns (Σ loss, number correct).
/// Loss per row is logsumexp(z) - z[label], computed in Float with the max subtracted.
package func softmaxCrossEntropy(n: Int, classes: Int, logits: UnsafePointer<Float>, labels: UnsafePointer<UInt8>,
                                 scale: Float, dLogits: UnsafeMutablePointer<Float>) -> (loss: Double, correct: Int) {
    var loss: Double = 0, correct = 0
    for b in 0..<n {
        let z = logits + b * classes, d = dLogits + b * classes
        let label = Int(labels[b])
        var m = -Float.infinity, arg = 0
        for j in 0..<classes where z[j] > m { m = z[j]; arg = j }
        var s: Float = 0
        for j in 0..<classes { let e = expf(z[j] - m); d[j] = e; s += e }
        let inv = 1 / s
        for j in 0..<classes { d[j] = (d[j] * inv - (j == label ? 1 : 0)) * scale }
        loss += Double(logf(s) + m - z[label])
        if arg == label { correct += 1 }
    }
    return (loss, correct)
}
