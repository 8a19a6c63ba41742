/// Why a store refused a new key version under a name (``KeyBrokerStore/insertVersion(_:created:)``): names are not
/// shared between a key's owner and the broker's administrator (`KeyOrigin`). Decided in the same statement or
/// transaction as the insert, so that two concurrent requests can't both pass.
public enum KeyNameRefusal: Error, Sendable, Hashable {
    /// An owner imported a key under the name (under a release policy), now or before it was purged: no other version
    /// goes under it (`KeyOwnedByImporter`). Also the refusal of ``KeyBrokerStore/replaceVersion(_:)`` for an owner's
    /// version: its release policy is not the administrator's to replace.
    case ownedByImporter
    /// An owner's import under a name that already has versions of the administrator's (`KeyNameInUse`).
    case inUse
}
