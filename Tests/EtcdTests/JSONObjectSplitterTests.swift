import Testing

@testable import Etcd

/// The watch stream's parser cuts objects wherever the network cut the bytes.
struct JSONObjectSplitterTests {
    private let stream = #"{"result":{"created":true}}"# + "\n" + #"{"result":{"events":[{"kv":{"key":"YQ=="}}]}}"# + "\n"

    @Test func wholeStreamAtOnceGivesEachObject() throws {
        var splitter = JSONObjectSplitter()
        let objects = try splitter.append(stream.bytes)
        #expect(objects.map { String(decoding: $0, as: UTF8.self) } == [#"{"result":{"created":true}}"#, #"{"result":{"events":[{"kv":{"key":"YQ=="}}]}}"#])
        #expect(!splitter.hasPartialObject)
    }

    @Test func byteByByteGivesTheSameObjects() throws {
        var splitter = JSONObjectSplitter()
        var objects: [[UInt8]] = []
        for byte in stream.bytes { objects += try splitter.append([byte]) }
        var whole = JSONObjectSplitter()
        #expect(objects == (try whole.append(stream.bytes)))
        #expect(objects.count == 2)
    }

    @Test(arguments: [1, 2, 3, 7, 13, 64])
    func anyChunkSizeGivesTheSameObjects(chunkSize: Int) throws {
        let bytes = stream.bytes + stream.bytes
        var splitter = JSONObjectSplitter()
        var objects: [[UInt8]] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + chunkSize, bytes.count)
            objects += try splitter.append(bytes[offset..<end])
            offset = end
        }
        #expect(objects.count == 4)
        #expect(!splitter.hasPartialObject)
    }

    @Test func bracesAndQuotesInsideStringsDoNotEndAnObject() throws {
        let tricky = #"{"a":"}{","b":"say \"}\"","c":"back\\","d":[{"e":"]"}]}"#
        var splitter = JSONObjectSplitter()
        let first = try splitter.append(Array(tricky.bytes.prefix(20)))
        #expect(first.isEmpty)
        #expect(splitter.hasPartialObject)
        let rest = try splitter.append(Array(tricky.bytes.dropFirst(20)) + #"{"next":1}"#.bytes)
        #expect(rest.map { String(decoding: $0, as: UTF8.self) } == [tricky, #"{"next":1}"#])
    }

    @Test func somethingOtherThanAnObjectIsAnError() throws {
        var splitter = JSONObjectSplitter()
        #expect(throws: EtcdError.self) { try splitter.append(#"{"a":1} x"#.bytes) }
    }

    @Test func aPartialObjectStaysUntilItEnds() throws {
        var splitter = JSONObjectSplitter()
        #expect(try splitter.append(#"  {"a":{"b""#.bytes).isEmpty)
        #expect(splitter.hasPartialObject)
        #expect(try splitter.append(":2}".bytes).isEmpty)
        #expect(try splitter.append("}\r\n".bytes) == [#"{"a":{"b":2}}"#.bytes])
        #expect(!splitter.hasPartialObject)
    }
}
