import Testing

@Test func placeholder_LoupeServiceTests() {}
