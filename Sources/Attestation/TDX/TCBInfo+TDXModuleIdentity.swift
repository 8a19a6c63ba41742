extension TCBInfo {
    /// The identity of a TDX module (TCB info v3, TDX): its signer and attributes, and levels by module SVN.
    public struct TDXModuleIdentity: Sendable {
        /// `TDX_01`, `TDX_03`, … (the module's major version); empty for the version-0 `tdxModule` entry.
        public let id: String
        /// The MRSIGNER (48 bytes) of the TDX module; the quote's `MRSIGNERSEAM` must equal it.
        public let mrSigner: [UInt8]
        /// The expected module attributes (8 bytes), compared under ``attributesMask``.
        public let attributes: [UInt8]
        /// The module attribute bits that must equal ``attributes``.
        public let attributesMask: [UInt8]
        /// Module SVN levels, newest first (empty for the version-0 entry).
        public let levels: [QEIdentity.Level]

        /// A module identity.
        public init(
            id: String,
            mrSigner: [UInt8],
            attributes: [UInt8],
            attributesMask: [UInt8],
            levels: [QEIdentity.Level]
        ) {
            self.id = id
            self.mrSigner = mrSigner
            self.attributes = attributes
            self.attributesMask = attributesMask
            self.levels = levels
        }
    }
}
