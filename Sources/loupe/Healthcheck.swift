import ArgumentParser

struct Healthcheck: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Not built yet.")
    func run() throws { throw ValidationError("'loupe healthcheck' is not built yet") }
}
