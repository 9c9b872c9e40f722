import PortalAPI
import Testing

@Suite("Generated messages survive binary → JSON → binary")
struct GeneratedMessageRoundTripTests {
    typealias AllKinds = Portal_Testing_V1_AllKinds

    @Test func everyFieldKindSurvives() throws {
        let original = CodecFixture.everyFieldSet()
        let json = try CodecFixture.json(original)
        #expect(try CodecFixture.message(json, as: AllKinds.self) == original)
    }

    @Test func theDefaultMessageIsAnEmptyObject() throws {
        #expect(try CodecFixture.json(AllKinds()) == "{}")
        #expect(try CodecFixture.message("{}", as: AllKinds.self) == AllKinds())
    }

    @Test(arguments: [
        AllKinds.Choice.choiceText("hello"), .choiceText(""), .choiceNumber(0), .choiceNumber(Int64.min),
        .choiceNested(Portal_Testing_V1_Nested()),
    ])
    func everyOneofMemberSurvivesEvenAtItsDefault(choice: AllKinds.Choice) throws {
        var message = AllKinds()
        message.choice = choice
        #expect(try CodecFixture.message(try CodecFixture.json(message), as: AllKinds.self).choice == choice)
    }

    @Test(arguments: [0, 5_000_000, 5_000, 5, 999_999_999] as [Int32])
    func timestampsSurviveAtEveryPrecision(nanos: Int32) throws {
        for seconds: Int64 in [0, -1, 1_772_719_629, -62_135_596_800, 253_402_300_799] {
            var message = AllKinds()
            message.time = Google_Protobuf_Timestamp(seconds: seconds, nanos: nanos)
            #expect(try CodecFixture.message(try CodecFixture.json(message), as: AllKinds.self) == message)
        }
    }

    @Test func aStatusWithAnyDetailsSurvives() throws {
        var status = Google_Rpc_Status()
        status.code = 3
        status.message = "bad request"
        var nested = Google_Protobuf_Any()
        nested.typeURL = "type.googleapis.com/portal.testing.v1.Nested"
        nested.value = CodecFixture.nested(label: "why", weight: -1).rpcBytes()
        var time = Google_Protobuf_Any()
        time.typeURL = "type.googleapis.com/google.protobuf.Timestamp"
        time.value = Google_Protobuf_Timestamp(seconds: 1, nanos: 500_000_000).rpcBytes()
        var allKinds = Google_Protobuf_Any()
        allKinds.typeURL = "example.com/portal.testing.v1.AllKinds"
        allKinds.value = CodecFixture.everyFieldSet().rpcBytes()
        status.details = [nested, time, allKinds, Google_Protobuf_Any()]
        let json = try CodecFixture.json(status)
        let decoded = try CodecFixture.message(json, as: Google_Rpc_Status.self)
        #expect(decoded.code == 3 && decoded.message == "bad request" && decoded.details.count == 4)
        #expect(
            decoded.details[0] == nested && decoded.details[1] == time && decoded.details[3] == Google_Protobuf_Any())
        #expect(decoded.details[2].typeURL == allKinds.typeURL)
        #expect(try AllKinds(rpcBytes: decoded.details[2].value) == CodecFixture.everyFieldSet())
    }

    @Test func largeMapsAndListsSurvive() throws {
        var message = AllKinds()
        for key in 0..<500 {
            message.labels["key \(key)"] = String(repeating: "v", count: key % 7)
            message.nestedByID[Int32(key * 7919 - 1_000_000)] = CodecFixture.nested(label: "\(key)", weight: Int64(key))
            message.repeatedDouble.append(Double(key) / 3)
        }
        #expect(try CodecFixture.message(try CodecFixture.json(message), as: AllKinds.self) == message)
    }
}
