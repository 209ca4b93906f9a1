/// The release this build is.
public enum TCPFallbackVersion {
    public static let current = "0.1.0"
}
