import Testing

@testable import Etcd

/// Keys travel as base64 and prefixes as [key, range_end) ranges.
struct EtcdKeysTests {
    @Test func rangeEndIncrementsTheLastByte() {
        #expect(EtcdKeys.rangeEnd(forPrefix: "foo".bytes) == "fop".bytes)
        #expect(EtcdKeys.rangeEnd(forPrefix: "/a/".bytes) == "/a0".bytes)
    }

    @Test func rangeEndSkipsTrailingFFBytes() {
        #expect(EtcdKeys.rangeEnd(forPrefix: [0x61, 0xff, 0xff]) == [0x62])
        #expect(EtcdKeys.rangeEnd(forPrefix: [0x01, 0xfe, 0xff]) == [0x01, 0xff])
    }

    @Test func aPrefixOfOnlyFFBytesOrNothingReachesTheEnd() {
        #expect(EtcdKeys.rangeEnd(forPrefix: [0xff, 0xff]) == [0])
        #expect(EtcdKeys.rangeEnd(forPrefix: []) == [0])
    }

    @Test func theEmptyPrefixMeansEveryKey() {
        let range = EtcdKeys.prefixRange("")
        #expect(range.key == [0])
        #expect(range.rangeEnd == [0])
        let named = EtcdKeys.prefixRange("svc/")
        #expect(named.key == "svc/".bytes)
        #expect(named.rangeEnd == "svc0".bytes)
    }

    @Test func base64RoundTrips() throws {
        #expect(EtcdKeys.base64("foo") == "Zm9v")
        #expect(EtcdKeys.base64([]) == "")
        let bytes: [UInt8] = [0, 1, 2, 0xfe, 0xff, 0x80]
        #expect(try EtcdKeys.bytes(base64: EtcdKeys.base64(bytes)) == bytes)
        #expect(try EtcdKeys.bytes(base64: nil) == [])
        #expect(try EtcdKeys.bytes(base64: "") == [])
        #expect(throws: EtcdError.self) { try EtcdKeys.bytes(base64: "not base64!") }
    }

    @Test func int64FieldsAreReadFromStringsOrNumbersAndDefaultToZero() throws {
        #expect(EtcdJSON.int64("9223372036854775807") == Int64.max)
        #expect(EtcdJSON.int64(42) == 42)
        #expect(EtcdJSON.int64(nil) == 0)
        let keyValue = try EtcdJSON.keyValue(try EtcdJSON.object(#"{"key":"Zm9v","mod_revision":"7"}"#.bytes))
        #expect(keyValue == EtcdKeyValue(key: "foo", value: [], modRevision: 7))
    }

    @Test func gatewayErrorsAreFoundInBothShapes() throws {
        let unary = try EtcdJSON.object(#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#.bytes)
        #expect(EtcdJSON.error(in: unary)?.message == "etcdserver: requested lease not found")
        #expect(EtcdJSON.error(in: unary)?.code == 5)
        let streamed = try EtcdJSON.object(#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}}"#.bytes)
        #expect(EtcdJSON.error(in: streamed)?.message == "etcdserver: no leader")
        #expect(EtcdJSON.error(in: streamed)?.code == 14)
        #expect(EtcdJSON.error(in: try EtcdJSON.object(#"{"header":{}}"#.bytes)) == nil)
    }
}
