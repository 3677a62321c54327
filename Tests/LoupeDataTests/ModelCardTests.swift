// The model card's training curves: read from a history.json that `loupe train` wrote, and a sentence
// (never the decoder's dump) when the file is missing, is `loupe import`'s record, or is something else.
import Testing
@testable import LoupeData

@Suite struct ModelCardTests {
    private func card(history: String?) throws -> ModelCard {
        let dir = try TempDir()
        let file = try ModelFile.read(path: repositoryRoot() + "/models/fashion/1/model.loupe")
        if let history { try dir.write("history.json", Array(history.utf8)) }
        return ModelCard(header: file.header, directory: dir.path)
    }

    @Test func curvesFromTheTrainersHistory() throws {
        let shipped = try String(decoding: FileIO.readFile(repositoryRoot() + "/models/fashion/1/history.json"), as: UTF8.self)
        let c = try card(history: shipped)
        #expect(c.history?.count == 10 && c.historyProblem == nil)
    }

    @Test func everyOtherFileIsASentence() throws {
        #expect(try card(history: nil).historyProblem == "no history.json beside the model file")
        #expect(try card(history: #"{"imported_from":"cifar_bn.onnx","opset":17,"input_layout":"NCHW"}"#).historyProblem
                == "no training curves: imported from cifar_bn.onnx (ONNX opset 17)")
        #expect(try card(history: #"{"epochs":[]}"#).historyProblem
                == "history.json is not a training history written by loupe train: the key 'dataset' is missing")
        #expect(try card(history: "{").historyProblem == "history.json is not a training history written by loupe train: it is not valid JSON")
        let wrongType = try card(history: #"{"dataset":3}"#).historyProblem ?? ""
        #expect(wrongType.hasSuffix("a value of the wrong type at dataset"), "\(wrongType)")
    }
}
