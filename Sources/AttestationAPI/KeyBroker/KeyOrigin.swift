/// Who brought a key version into the broker, as the broker records it (``KeyAttributes/origin``).
///
/// A name belongs to one origin: the broker refuses a version of the administrator's (create, rotate, an import
/// without a release policy) under a name an owner imported a key under (`KeyOwnedByImporter`, 409, even after the
/// owner's key is purged), and an owner's import under a name that already has a version (`KeyNameInUse`, or
/// `KeyOwnedByImporter` when an owner's): the broker can't tell an owner from its administrator (both send the
/// administrator's token), so an owner's name holds exactly the one version the owner imported. A client that
/// encrypts to a name's newest version refuses a name whose versions differ in origin. The release policy of an
/// owner's version is the owner's too: the broker refuses to replace it (`KeyOwnedByImporter`, 409), and the broker
/// enclave stores an owner's import immutable whatever the request said, so its host can't either; an owner who needs
/// another policy imports the key again under a new name.
public enum KeyOrigin: String, Codable, Hashable, Sendable, CaseIterable {
    /// Imported under a release policy with the owner's import intent (bring your own key): its data keys reach an
    /// enclave through the policy, and the administrator only unwraps them when the owner allowed it.
    case owner
    /// Made by the broker's administrator: created or rotated inside the broker enclave, or imported without a
    /// release policy.
    case administrator
}
