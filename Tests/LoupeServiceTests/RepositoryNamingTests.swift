import LoupeData
import Testing
@testable import LoupeService

@Suite struct RepositoryNamingTests {
    @Test(arguments: ["fashion", "mnist-digits", "a.b_c-1", "X", String(repeating: "a", count: 128)])
    func acceptsValidNames(_ name: String) {
        #expect(ModelRepositoryLayout.isValidName(name))
    }

    @Test(arguments: ["", ".", "..", ".hidden", "../etc", "a/b", "/abs", "a b", "a\0b", "naïve", "a%2e",
                      "a\\b", String(repeating: "a", count: 129)])
    func refusesInvalidNames(_ name: String) {
        #expect(!ModelRepositoryLayout.isValidName(name))
    }

    @Test func parsesVersions() {
        #expect(ModelRepositoryLayout.parseVersion("1") == 1)
        #expect(ModelRepositoryLayout.parseVersion("42") == 42)
        #expect(ModelRepositoryLayout.parseVersion("999999999999999999") == 999_999_999_999_999_999)
        for bad in ["", "0", "01", "-1", "+1", "1.0", "1e3", " 1", "one", "1/..", "9999999999999999999"] {
            #expect(ModelRepositoryLayout.parseVersion(bad) == nil, "\(bad)")
        }
    }

    @Test func parsesPolicies() {
        #expect(VersionPolicy(parsing: "latest") == .latest(count: 1))
        #expect(VersionPolicy(parsing: " Latest ") == .latest(count: 1))
        #expect(VersionPolicy(parsing: "latest:3") == .latest(count: 3))
        #expect(VersionPolicy(parsing: "all") == .all)
        #expect(VersionPolicy(parsing: "3") == .specific([3]))
        #expect(VersionPolicy(parsing: "3, 1,3") == .specific([1, 3]))
        #expect(VersionPolicy(parsing: "specific:2,5") == .specific([2, 5]))
        for bad in ["", "latest:0", "latest:x", "0", "1,,2", "newest", "specific:"] {
            #expect(VersionPolicy(parsing: bad) == nil, "\(bad)")
        }
        #expect(VersionPolicy.specific([1, 3]).description == "specific:1,3")
    }

    @Test func configurationValidation() {
        var c = RepositoryConfiguration()
        #expect(c.validationErrors().isEmpty)
        c.defaultModel = "../x"
        c.driftWindow = 0
        c.policies["ok"] = .latest(count: 0)
        let errors = c.validationErrors()
        #expect(errors.count == 3)
        #expect(errors.contains { $0.contains("default_model") })
    }
}
