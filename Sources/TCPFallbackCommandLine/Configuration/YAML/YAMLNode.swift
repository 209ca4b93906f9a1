/// A YAML document as a tree, every node with the line it starts on (from 1): what a
/// configuration file's errors point at.
indirect enum YAMLNode {
    /// A value; `plain` when it was written without quotes (an empty plain value is "nothing").
    case scalar(String, line: Int, plain: Bool)
    case sequence([YAMLNode], line: Int)
    /// Key-value pairs in the order written; a key given twice is kept twice (the reader of
    /// the tree decides what that means).
    case mapping([(key: YAMLNode, value: YAMLNode)], line: Int)

    var line: Int {
        switch self {
        case .scalar(_, let line, _), .sequence(_, let line), .mapping(_, let line): line
        }
    }

    /// The text of a scalar; nil for a sequence or a mapping.
    var string: String? {
        if case .scalar(let text, _, _) = self { return text }
        return nil
    }
}
