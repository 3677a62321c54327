print("http bench: not built yet")
