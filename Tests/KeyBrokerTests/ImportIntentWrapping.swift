import KeyBroker
import KeyBrokerInterface
import KeyReleaseFormats
import _CryptoExtras

extension BrokerImportKeyRequest {
    /// This request with `material` wrapped to `importKey` under the owner's import intent for a broker trusting
    /// `authorities` (what a genuine owner's client wraps).
    func wrapping(
        _ material: [UInt8],
        to importKey: _RSA.Encryption.PublicKey,
        trusting authorities: [BrokerAuthority]
    ) throws -> BrokerImportKeyRequest {
        var request = self
        let intent = KeyBroker.importIntent(self, pins: try KeyBroker.pins(of: authorities))
        request.wrappedKey = try RSAAESKeyWrap.wrap(intent.payload(material), to: importKey)
        return request
    }

    /// This request with `material` wrapped to `importKey` under the owner's import intent for `broker` (its current
    /// pins, as its evidence shows them).
    func wrapping(
        _ material: [UInt8],
        to importKey: _RSA.Encryption.PublicKey,
        for broker: KeyBroker
    ) throws
        -> BrokerImportKeyRequest
    {
        var request = self
        request.wrappedKey = try RSAAESKeyWrap.wrap(broker.importIntent(self).payload(material), to: importKey)
        return request
    }
}
