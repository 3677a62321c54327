// The OpenAPI 3 document served at /openapi.json; docs/openapi.yaml holds the same text (JSON is
// YAML), checked by a test.
enum OpenAPI {
    static let document: JSONValue = {
        (try? JSONReader.parse(Array(text.utf8))) ?? .object([("openapi", .string("3.0.3"))])
    }()

    static let text = #"""
{"openapi":"3.0.3","info":{"title":"Loupe","version":"0.1.0"},"paths":{}}
"""#
}
