import Testing

@Test func placeholder_LoupeHTTPTests() {}
