// Answers one JSON conversion request per stdin line, for comparison with Python's json_format:
//   {"type": NAME, "binary": BASE64}        -> {"json": TEXT}
//   {"type": NAME, "json": TEXT}            -> {"binary": BASE64}
//   {"type": NAME, "query": [[NAME, VALUE]]} -> {"binary": BASE64}
// and {"error": TEXT} when the conversion fails. With "repeat": N the conversion runs N times and the
// answer adds "nanosecondsEach", the mean time of one (bench/gateway reports the JSON mapping's cost so).
import Foundation
import PortalAPI
import PortalProtoJSON

let codec: ProtoJSONCodec
do {
    codec = try ProtoJSONCodec(files: ProtoFileRegistry.files)
} catch {
    FileHandle.standardError.write(Data("portal-json-oracle: \(error)\n".utf8))
    exit(1)
}

/// The answer to one request line.
func answer(_ line: String) -> [String: String] {
    guard let request = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
        let type = request["type"] as? String
    else { return ["error": "malformed request"] }
    let repeats = max(1, request["repeat"] as? Int ?? 1)
    do {
        if let base64 = request["binary"] as? String {
            guard let bytes = Data(base64Encoded: base64) else { return ["error": "malformed base64 in request"] }
            let input = [UInt8](bytes)
            var json: [UInt8] = []
            let elapsed = try ContinuousClock().measure {
                for _ in 0..<repeats { json = try codec.json(fromBinary: input, messageType: type) }
            }
            return timed(["json": String(decoding: json, as: UTF8.self)], elapsed, repeats, request)
        }
        if let text = request["json"] as? String {
            let input = Array(text.utf8)
            var binary: [UInt8] = []
            let elapsed = try ContinuousClock().measure {
                for _ in 0..<repeats { binary = try codec.binary(fromJSON: input, messageType: type) }
            }
            return timed(["binary": Data(binary).base64EncodedString()], elapsed, repeats, request)
        }
        if let pairs = request["query"] as? [[String]] {
            let parameters = pairs.compactMap { $0.count == 2 ? (name: $0[0], value: $0[1]) : nil }
            return ["binary": Data(try codec.binary(fromQuery: parameters, messageType: type)).base64EncodedString()]
        }
        return ["error": "request has neither binary, json nor query"]
    } catch {
        return ["error": "\(error)"]
    }
}

/// `answer` with the mean time of one conversion when the request asked for repeats.
func timed(
    _ answer: [String: String], _ elapsed: Duration, _ repeats: Int, _ request: [String: Any]
) -> [String: String] {
    guard request["repeat"] != nil else { return answer }
    let (seconds, attoseconds) = elapsed.components
    let nanoseconds = (Double(seconds) * 1e9 + Double(attoseconds) / 1e9) / Double(repeats)
    return answer.merging(["nanosecondsEach": String(Int(nanoseconds.rounded()))]) { current, _ in current }
}

while let line = readLine(strippingNewline: true) {
    let response =
        (try? JSONSerialization.data(withJSONObject: answer(line))) ?? Data(#"{"error":"unencodable answer"}"#.utf8)
    FileHandle.standardOutput.write(response + Data("\n".utf8))
}
