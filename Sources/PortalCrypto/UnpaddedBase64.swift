import Foundation

/// Base64 text without padding, as tokens, password hashes and page-token signatures are written.
public enum UnpaddedBase64 {
    /// `bytes` in the standard alphabet, or in the URL-safe one (`-` and `_`) when `urlSafe`.
    public static func encode(_ bytes: [UInt8], urlSafe: Bool = false) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.last == "=" { text.removeLast() }
        return urlSafe ? text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_") : text
    }

    /// The bytes of text in either alphabet, padded or not; nil when it is not base64.
    public static func decode(_ text: String) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}
