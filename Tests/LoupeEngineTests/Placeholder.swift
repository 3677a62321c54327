import Testing

@Test func placeholder_LoupeEngineTests() {}
