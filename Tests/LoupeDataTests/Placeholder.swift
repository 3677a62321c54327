import Testing

@Test func placeholder_LoupeDataTests() {}
