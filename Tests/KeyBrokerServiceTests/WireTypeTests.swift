import AttestationAPI
import Foundation
import Testing

@Suite("Key broker wire types")
struct KeyBrokerWireTypeTests {
    @Test("A create request with an unknown member is refused, naming it")
    func unknownMemberRefused() throws {
        let text = #"{"kty":"RSA","key_size":2048,"attributes":{"exportible":true}}"#
        #expect {
            try WireJSON.decode(KeyCreateParameters.self, from: Array(text.utf8))
        } throws: { error in
            guard case DecodingError.dataCorrupted(let context) = error else { return false }
            return context.debugDescription.contains("exportible")
        }
    }

    @Test("A counter increment with a misspelt member is refused, naming it; the exact one decodes")
    func counterIncrementIsStrict() throws {
        let misspelt = #"{"nonce":"n","expectd":3,"expected":2,"state":"aa"}"#
        #expect {
            try WireJSON.decode(RollbackCounterIncrement.self, from: Array(misspelt.utf8))
        } throws: { error in
            guard case DecodingError.dataCorrupted(let context) = error else { return false }
            return context.debugDescription.contains("expectd")
        }
        let exact = #"{"nonce":"n","expected":2,"state":"aa"}"#
        let decoded = try WireJSON.decode(RollbackCounterIncrement.self, from: Array(exact.utf8))
        #expect(decoded == RollbackCounterIncrement(nonce: "n", expected: 2, state: "aa"))
        // The contract's canonical bytes travel as `contract` (base64url) and round-trip; a misspelt `contrac` is
        // refused by name rather than read as "no document".
        let withDocument = RollbackCounterIncrement(nonce: "n", expected: 2, state: "aa", contract: "eyJ9")
        let encoded = try WireJSON.encode(withDocument)
        #expect(String(decoding: encoded, as: UTF8.self).contains(#""contract":"eyJ9""#))
        #expect(try WireJSON.decode(RollbackCounterIncrement.self, from: encoded) == withDocument)
        let misspeltDocument = #"{"nonce":"n","expected":2,"state":"aa","contrac":"eyJ9"}"#
        #expect {
            try WireJSON.decode(RollbackCounterIncrement.self, from: Array(misspeltDocument.utf8))
        } throws: { error in
            guard case DecodingError.dataCorrupted(let context) = error else { return false }
            return context.debugDescription.contains("contrac")
        }
        // The enclave's signature over the increment travels as `signature` (base64url) and round-trips; a misspelt
        // `signatur` is refused by name rather than read as "no signature".
        let signed = RollbackCounterIncrement(nonce: "n", expected: 2, state: "aa", contract: "eyJ9", signature: "c2ln")
        let signedBytes = try WireJSON.encode(signed)
        #expect(String(decoding: signedBytes, as: UTF8.self).contains(#""signature":"c2ln""#))
        #expect(try WireJSON.decode(RollbackCounterIncrement.self, from: signedBytes) == signed)
        let misspeltSignature = #"{"nonce":"n","expected":2,"state":"aa","signatur":"c2ln"}"#
        #expect {
            try WireJSON.decode(RollbackCounterIncrement.self, from: Array(misspeltSignature.utf8))
        } throws: { error in
            guard case DecodingError.dataCorrupted(let context) = error else { return false }
            return context.debugDescription.contains("signatur")
        }
    }

    @Test("A JWK carrying a private member is refused")
    func privateMemberRefused() throws {
        let text = #"{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}"#
        #expect {
            try WireJSON.decode(KeyBrokerWebKey.self, from: Array(text.utf8))
        } throws: { error in
            guard case DecodingError.dataCorrupted(let context) = error else { return false }
            return context.debugDescription.contains("\"d\"")
        }
    }

    @Test("Key Vault's member names: key_size, key_ops, release_policy, key_hsm, recoveryLevel")
    func keyVaultNames() throws {
        let parameters = KeyCreateParameters(
            kty: "RSA-HSM",
            keySize: 3072,
            keyOps: ["wrapKey"],
            attributes: KeyAttributes(exportable: true),
            releasePolicy: KeyReleasePolicy(data: "e30", immutable: true)
        )
        let text = try WireJSON.string(parameters)
        #expect(
            text
                == #"{"attributes":{"exportable":true},"key_ops":["wrapKey"],"key_size":3072,"kty":"RSA-HSM","#
                + #""release_policy":{"contentType":"application/json; charset=utf-8","data":"e30","immutable":true}}"#
        )
        let decoded = try WireJSON.decode(KeyCreateParameters.self, from: Array(text.utf8))
        #expect(decoded == parameters)
        let key = KeyBrokerWebKey(kty: "RSA-HSM", keyHSM: "abc")
        #expect(try WireJSON.string(key) == #"{"key_hsm":"abc","kty":"RSA-HSM"}"#)
    }
}
