import CYAMLEvents

/// Reads YAML text into a `YAMLNode` tree with libyaml, the reference C parser (Debian's
/// libyaml-0-2): its syntax errors come with libyaml's own words, line and column. Anchors
/// and aliases are resolved; tags are ignored (every scalar is text, as a flag's value is).
enum YAMLReader {
    /// A syntax error: where, and libyaml's description.
    struct SyntaxError: Error, CustomStringConvertible {
        let line: Int
        let column: Int
        let message: String
        var description: String { "\(message) (line \(line), column \(column))" }
    }

    /// The document in `text`; nil when it is empty (or only comments). Several documents
    /// (`---`) are refused: a configuration is one.
    static func read(_ text: [UInt8]) throws(SyntaxError) -> YAMLNode? {
        let result: Result<YAMLNode?, SyntaxError> = text.withUnsafeBufferPointer { buffer in
            // The reader parses `buffer` lazily: it lives inside this closure only.
            guard let reader = tf_yaml_open(buffer.baseAddress, buffer.count) else {
                return .failure(SyntaxError(line: 1, column: 1, message: "out of memory"))
            }
            defer { tf_yaml_close(reader) }
            var composer = Composer(reader: reader)
            do throws(SyntaxError) {
                return .success(try composer.document())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Builds nodes from the reader's events, one at a time.
    private struct Composer {
        let reader: OpaquePointer
        var event = tf_yaml_event()
        var anchors: [String: YAMLNode] = [:]

        mutating func next() throws(SyntaxError) {
            tf_yaml_next(reader, &event)
            if event.kind == TF_YAML_ERROR {
                var line = 0
                var column = 0
                var context: UnsafePointer<CChar>?
                let problem = String(cString: tf_yaml_problem(reader, &line, &column, &context))
                throw SyntaxError(line: line, column: column, message: problem + (context.map { " " + String(cString: $0) } ?? ""))
            }
        }

        /// The stream's one document.
        mutating func document() throws(SyntaxError) -> YAMLNode? {
            var root: YAMLNode?
            var documents = 0
            while true {
                try next()
                switch event.kind {
                case TF_YAML_END:
                    return root
                case TF_YAML_DOCUMENT_START:
                    documents += 1
                    if documents > 1 {
                        throw SyntaxError(line: event.line, column: event.column, message: "a second document: the file must hold one")
                    }
                case TF_YAML_OTHER:
                    continue
                default:
                    root = try node()
                }
            }
        }

        /// The node whose first event is the current one.
        mutating func node() throws(SyntaxError) -> YAMLNode {
            let line = event.line
            let anchor = event.anchor.map { String(cString: $0) }
            let built: YAMLNode
            switch event.kind {
            case TF_YAML_SCALAR:
                built = .scalar(text(), line: line, plain: event.plain != 0)
            case TF_YAML_ALIAS:
                let name = text()
                guard let target = anchors[name] else {
                    throw SyntaxError(line: line, column: event.column, message: "alias *\(name) names no anchor defined before it")
                }
                return target
            case TF_YAML_SEQUENCE_START:
                var items: [YAMLNode] = []
                while true {
                    try next()
                    if event.kind == TF_YAML_SEQUENCE_END { break }
                    items.append(try node())
                }
                built = .sequence(items, line: line)
            case TF_YAML_MAPPING_START:
                var pairs: [(key: YAMLNode, value: YAMLNode)] = []
                while true {
                    try next()
                    if event.kind == TF_YAML_MAPPING_END { break }
                    let key = try node()
                    try next()
                    pairs.append((key, try node()))
                }
                built = .mapping(pairs, line: line)
            default:
                throw SyntaxError(line: line, column: event.column, message: "unexpected YAML event")
            }
            if let anchor { anchors[anchor] = built }
            return built
        }

        private func text() -> String {
            guard let value = event.value else { return "" }
            return value.withMemoryRebound(to: UInt8.self, capacity: event.length) {
                String(decoding: UnsafeBufferPointer(start: $0, count: event.length), as: UTF8.self)
            }
        }
    }
}
