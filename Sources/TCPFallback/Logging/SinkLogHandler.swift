import Logging

/// A swift-log handler that hands every event, with its metadata, to a `LogSink`.
public struct SinkLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let sink: any LogSink

    public init(sink: any LogSink, level: Logger.Level) {
        self.sink = sink
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        // A listener of a configuration file names itself first, on every destination.
        let listener = fields["listener"].map { "[\($0)] " } ?? ""
        sink.write(LogRecord(level: event.level, message: listener + "\(event.message)", metadata: fields))
    }
}
