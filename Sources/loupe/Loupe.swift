import ArgumentParser

@main
struct Loupe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loupe",
        abstract: "Train, evaluate and serve a small CNN for 28×28 grayscale images.",
        subcommands: [Train.self, Evaluate.self, Predict.self, Inspect.self, Import.self, Export.self, Serve.self, Healthcheck.self]
    )
}
