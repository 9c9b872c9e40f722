internal import COpenSSL

/// Authenticated encryption (AES-256-GCM, OpenSSL) for secrets a service must read back, such as
/// webhook signing secrets: stored sealed, so a copy of the database alone does not reveal them.
public struct SecretBox: Sendable {
    /// Bytes of a key.
    public static let keySize = 32
    private static let nonceSize = 12
    private static let tagSize = 16

    private let key: [UInt8]

    /// A box sealing with `key` (32 bytes); nil for a key of another size.
    public init?(key: [UInt8]) {
        guard key.count == Self.keySize else { return nil }
        self.key = key
    }

    /// `plaintext` sealed under a fresh random nonce: nonce, ciphertext and tag together.
    public func seal(_ plaintext: [UInt8]) -> [UInt8] {
        let nonce = SecretHashing.randomBytes(Self.nonceSize)
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count)
        var tag = [UInt8](repeating: 0, count: Self.tagSize)
        let context = EVP_CIPHER_CTX_new()
        defer { EVP_CIPHER_CTX_free(context) }
        var length: Int32 = 0
        let ok =
            EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nonce) == 1
            && ciphertext.withUnsafeMutableBufferPointer { output in
                EVP_EncryptUpdate(context, output.baseAddress, &length, plaintext, Int32(plaintext.count)) == 1
            }
            && EVP_EncryptFinal_ex(context, nil, &length) == 1
            && EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(Self.tagSize), &tag) == 1
        precondition(ok, "OpenSSL AES-256-GCM sealing failed")
        return nonce + ciphertext + tag
    }

    /// The plaintext of `sealed`, or nil when it was not sealed with this key or was altered.
    public func open(_ sealed: [UInt8]) -> [UInt8]? {
        guard sealed.count >= Self.nonceSize + Self.tagSize else { return nil }
        let nonce = Array(sealed[..<Self.nonceSize])
        let ciphertext = Array(sealed[Self.nonceSize..<(sealed.count - Self.tagSize)])
        var tag = Array(sealed[(sealed.count - Self.tagSize)...])
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count)
        let context = EVP_CIPHER_CTX_new()
        defer { EVP_CIPHER_CTX_free(context) }
        var length: Int32 = 0
        let ok =
            EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nonce) == 1
            && plaintext.withUnsafeMutableBufferPointer { output in
                EVP_DecryptUpdate(context, output.baseAddress, &length, ciphertext, Int32(ciphertext.count)) == 1
            }
            && EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(Self.tagSize), &tag) == 1
            && EVP_DecryptFinal_ex(context, nil, &length) == 1
        return ok ? plaintext : nil
    }
}
