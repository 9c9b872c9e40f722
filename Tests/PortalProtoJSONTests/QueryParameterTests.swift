import PortalAPI
import Testing

@Suite("Query parameters convert like a JSON object of strings")
struct QueryParameterTests {
    typealias AllKinds = Portal_Testing_V1_AllKinds

    private func message(_ parameters: [(name: String, value: String)]) throws -> AllKinds {
        try AllKinds(rpcBytes: CodecFixture.codec.binary(fromQuery: parameters, messageType: CodecFixture.allKinds))
    }

    private func error(_ parameters: [(name: String, value: String)]) -> String? {
        do {
            _ = try CodecFixture.codec.binary(fromQuery: parameters, messageType: CodecFixture.allKinds)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func everyScalarKindIsReadFromText() throws {
        let decoded = try message([
            ("int32Value", "-3"), ("int64_value", "-9223372036854775808"), ("uint64Value", "18446744073709551615"),
            ("boolValue", "true"),
            ("maybeBool", "false"), ("floatValue", "1.5"), ("doubleValue", "NaN"), ("stringValue", "héllo"),
            ("bytesValue", "-_8"),
            ("colour", "COLOUR_GREEN"), ("time", "2024-01-01T00:00:00+01:00"), ("choiceNumber", "7"),
        ])
        #expect(decoded.int32Value == -3 && decoded.int64Value == Int64.min && decoded.uint64Value == UInt64.max)
        #expect(
            decoded.boolValue && decoded.maybeBool == false && decoded.floatValue == 1.5 && decoded.doubleValue.isNaN)
        #expect(decoded.stringValue == "héllo" && decoded.bytesValue == [0xFB, 0xFF] && decoded.colour == .green)
        #expect(decoded.time == Google_Protobuf_Timestamp(seconds: 1_704_063_600) && decoded.choice == .choiceNumber(7))
    }

    @Test func repeatedFieldsTakeOneOrSeveralValues() throws {
        let decoded = try message([
            ("repeatedInt32", "1"), ("repeatedString", "a"), ("repeatedInt32", "2"), ("repeatedColour", "COLOUR_RED"),
        ])
        #expect(decoded.repeatedInt32 == [1, 2] && decoded.repeatedString == ["a"] && decoded.repeatedColour == [.red])
    }

    @Test func dottedNamesReachMessageFieldsAndMapEntries() throws {
        let decoded = try message([
            ("nested.label", "x"), ("nested.weight", "4"), ("labels.team", "licensing"),
            ("nestedById.3.label", "three"),
        ])
        #expect(decoded.nested == CodecFixture.nested(label: "x", weight: 4))
        #expect(decoded.labels == ["team": "licensing"] && decoded.nestedByID[3]?.label == "three")
    }

    @Test func aRepeatedMessageTakesOneElementFromDottedNames() throws {
        let decoded = try message([("repeatedNested.label", "only"), ("repeatedNested.weight", "2")])
        #expect(decoded.repeatedNested == [CodecFixture.nested(label: "only", weight: 2)])
    }

    @Test func noParametersIsTheEmptyMessage() throws {
        #expect(try message([]) == AllKinds())
    }

    @Test func errorsNameTheParameter() {
        #expect(error([("int32Value", "1"), ("int32Value", "2")]) == "int32Value: expected a single value")
        #expect(error([("bogus", "1")]) == "bogus: unknown field")
        #expect(error([("nested.bogus", "1")]) == "nested.bogus: unknown field")
        #expect(error([("int32Value", "x")]) == #"int32Value: expected an integer, not "x""#)
        #expect(error([("boolValue", "yes")]) == "boolValue: expected true or false, not a string")
        #expect(
            error([("repeatedInt32", "1"), ("repeatedInt32", "x")])
                == #"repeatedInt32[1]: expected an integer, not "x""#)
        #expect(error([("nested", "x"), ("nested.label", "y")]) == "nested: given both as a value and as fields")
        #expect(error([("nested..label", "x")]) == "nested..label: invalid parameter name")
        #expect(error([("int32Value", "1"), ("int32_value", "1")]) == "int32Value: field given more than once")
        let deepName = Array(repeating: "nested", count: 101).joined(separator: ".")
        #expect(error([(deepName, "1")]) == "\(deepName): parameter name nested more than 100 deep")
    }
}
