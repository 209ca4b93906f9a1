import Yams

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

    /// A YAML syntax error, with libyaml's own words and position.
    init(yaml error: YamlError, path: String) {
        self.path = path
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            self.line = mark.line
            self.key = nil
            self.message = "YAML syntax: \(problem)" + (context.map { " \($0.text)" } ?? "") + " (column \(mark.column))"
        case .duplicatedKeysInMapping(let duplicates, let context):
            self.line = context.mark.line
            self.key = duplicates.first
            self.message = "given more than once in the mapping that starts on this line (\(duplicates.joined(separator: ", ")))"
        case .reader(let problem, let offset, _, _):
            self.line = nil
            self.key = nil
            self.message = "cannot read the YAML: \(problem)" + (offset.map { " at byte \($0)" } ?? "")
        default:
            self.line = nil
            self.key = nil
            self.message = "YAML: \(error)"
        }
    }

    init(path: String, line: Int?, key: String?, message: String) {
        self.path = path
        self.line = line
        self.key = key
        self.message = message
    }
}
