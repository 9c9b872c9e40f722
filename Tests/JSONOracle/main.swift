// Answers one JSON conversion request per stdin line, for comparison with Python's json_format:
//   {"type": NAME, "binary": BASE64}        -> {"json": TEXT}
//   {"type": NAME, "json": TEXT}            -> {"binary": BASE64}
//   {"type": NAME, "query": [[NAME, VALUE]]} -> {"binary": BASE64}
// and {"error": TEXT} when the conversion fails.
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
    do {
        if let base64 = request["binary"] as? String {
            guard let bytes = Data(base64Encoded: base64) else { return ["error": "malformed base64 in request"] }
            let json = try codec.json(fromBinary: [UInt8](bytes), messageType: type)
            return ["json": String(decoding: json, as: UTF8.self)]
        }
        if let json = request["json"] as? String {
            return ["binary": Data(try codec.binary(fromJSON: Array(json.utf8), messageType: type)).base64EncodedString()]
        }
        if let pairs = request["query"] as? [[String]] {
            let parameters = pairs.compactMap { $0.count == 2 ? (name: $0[0], value: $0[1]) : nil }
            return ["binary": Data(try codec.binary(fromQuery: parameters, messageType: type)).base64EncodedString()]
        }
        return ["error": "request has neither binary, json nor query"]
    } catch {
        return ["error": error.description]
    }
}

while let line = readLine(strippingNewline: true) {
    let response = (try? JSONSerialization.data(withJSONObject: answer(line))) ?? Data(#"{"error":"unencodable answer"}"#.utf8)
    FileHandle.standardOutput.write(response + Data("\n".utf8))
}
