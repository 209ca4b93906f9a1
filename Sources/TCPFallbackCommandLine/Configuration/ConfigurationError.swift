/// Why a configuration file was refused: the file, the line and the key that are wrong.
struct ConfigurationError: Error, CustomStringConvertible {
    let path: String
    let line: Int?
    let key: String?
    let message: String

    /// `FILE:LINE: key "KEY": MESSAGE`, as compilers word it, so editors can jump there.
    var description: String {
        let place = line.map { "\(path):\($0)" } ?? path
        return "\(place): " + (key.map { "key \"\($0)\": " } ?? "") + message
    }

    init(path: String, line: Int?, key: String?, message: String) {
        self.path = path
        self.line = line
        self.key = key
        self.message = message
    }
}
