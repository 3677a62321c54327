/// Human class names for the datasets Loupe knows.
public enum ClassNames {
    /// Fashion-MNIST, in label order 0…9.
    public static let fashionMNIST: [String] = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]
    /// MNIST digits, "0"…"9".
    public static let digits: [String] = (0..<10).map { String($0) }

    /// Guesses names for a dataset directory: Fashion-MNIST when the path mentions "fashion",
    /// otherwise the numbers "0"…"n-1" (which are the right names for MNIST digits).
    public static func guess(forDatasetAt directory: String, classCount: Int = 10) -> [String] {
        if classCount == 10 && directory.lowercased().contains("fashion") { return fashionMNIST }
        return (0..<classCount).map { String($0) }
    }

    /// A short dataset name from a directory path: its last path component ("fashion-mnist").
    public static func datasetName(forDatasetAt directory: String) -> String {
        let parts = directory.split(separator: "/").filter { $0 != "." && !$0.isEmpty }
        return parts.last.map(String.init) ?? directory
    }
}
