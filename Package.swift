// swift-tools-version:6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "EnclaveKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "EnclaveCore", targets: ["EnclaveCore"]),
        .library(name: "Attestation", targets: ["Attestation"]),
        .library(name: "EnclaveRuntime", targets: ["EnclaveRuntime"]),
        .library(name: "EnclaveHost", targets: ["EnclaveHost"]),
        .library(name: "AttestationService", targets: ["AttestationService"]),
        .library(name: "AttestationServicePostgres", targets: ["AttestationServicePostgres"]),
        .library(name: "AttestationClient", targets: ["AttestationClient"]),
        .library(name: "AttestationAPI", targets: ["AttestationAPI"]),
        .library(name: "KeyBroker", targets: ["KeyBroker"]),
        .library(name: "KeyBrokerInterface", targets: ["KeyBrokerInterface"]),
        .library(name: "KeyReleaseFormats", targets: ["KeyReleaseFormats"]),
        .library(name: "EnclaveKeyRelease", targets: ["EnclaveKeyRelease"]),
        .executable(name: "KeyBrokerEnclave", targets: ["KeyBrokerEnclave"]),
        .executable(name: "enclave", targets: ["enclave"]),
        .executable(name: "HelloEnclave", targets: ["HelloEnclave"]),
        .executable(name: "HelloHost", targets: ["HelloHost"]),
        .executable(name: "VaultEnclave", targets: ["VaultEnclave"]),
        .executable(name: "VaultHost", targets: ["VaultHost"]),
        .executable(name: "TestEnclave", targets: ["TestEnclave"]),
        .executable(name: "CleanRoomEnclave", targets: ["CleanRoomEnclave"]),
    ],
    traits: [
        // The CLI's `serve attestation --database postgres://…`. On by default (so `swift build` and `swift test`
        // build and test it); Scripts/hello.sh builds with `--disable-default-traits`, so the hello path does not
        // compile PostgresNIO.
        .trait(name: "Postgres", description: "PostgreSQL storage for `enclave serve attestation --database`."),
        .default(enabledTraits: ["Postgres"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // Syscall shims (spawn, seccomp, memfd). The only C in the package.
        .target(name: "CEnclaveSystem"),
        .target(
            name: "EnclaveCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Attestation",
            dependencies: [
                "EnclaveCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "_EnclaveChannel",
            dependencies: ["EnclaveCore", "CEnclaveSystem"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "EnclaveRuntime",
            dependencies: [
                "EnclaveCore", "_EnclaveChannel", "CEnclaveSystem",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "EnclaveHost",
            dependencies: [
                "EnclaveCore", "Attestation", "_EnclaveChannel", "CEnclaveSystem",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictSettings
        ),
        // The MAA-compatible attestation service: REST, policies, signed tokens, storage.
        .target(
            name: "AttestationService",
            dependencies: [
                "Attestation", "EnclaveCore", "AttestationAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictSettings
        ),
        // The service's store on PostgreSQL, for several instances; in its own target so that the hello path
        // (HelloHost, and the CLI without the Postgres trait) does not build PostgresNIO.
        .target(
            name: "AttestationServicePostgres",
            dependencies: [
                "AttestationService", "EnclaveCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The Codable wire types (MAA's request and response documents) shared by the service and its client.
        .target(name: "AttestationAPI", dependencies: ["EnclaveCore"], swiftSettings: strictSettings),
        // The key broker (Key Vault-style secure key release): release policies, token verification against pinned
        // authorities, key material, the at-rest envelope and the wraps to the target; used inside the broker enclave.
        .target(
            name: "KeyBroker",
            dependencies: [
                "AttestationAPI", "KeyBrokerInterface", "KeyReleaseFormats", "EnclaveCore", "CleanRoom",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictSettings
        ),
        // The broker enclave's ECALLs and the release OCALLs, with their Codable inputs and outputs.
        .target(name: "KeyBrokerInterface", dependencies: ["EnclaveCore"], swiftSettings: strictSettings),
        // The key broker's enclave (shipped with the product, signed like any enclave): every key operation runs here.
        .executableTarget(
            name: "KeyBrokerEnclave",
            dependencies: [
                "KeyBroker", "KeyBrokerInterface", "KeyReleaseFormats", "EnclaveRuntime", "AttestationAPI",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // `releaseKey` for ordinary enclaves: attest an ephemeral key, have the host carry evidence and token, unwrap.
        .target(
            name: "EnclaveKeyRelease",
            dependencies: [
                "EnclaveRuntime", "EnclaveCore", "KeyBrokerInterface", "KeyReleaseFormats",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The wrapped-key formats both ends share (RSA_AES_KEY_WRAP_256, JWE ECDH-ES+A256KW, the release answer),
        // without JWT or X.509 libraries, so that an ordinary enclave can unwrap.
        .target(
            name: "KeyReleaseFormats",
            dependencies: [
                "EnclaveCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The data clean room's formats (issue 13): contracts, encrypted data sets, receipts, result encryption.
        .target(
            name: "CleanRoom",
            dependencies: ["EnclaveCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        // Turns on SQLite's memory accounting at load time, so that heap limits are enforced (see its header).
        .target(name: "CCleanRoomSQLite", dependencies: [.product(name: "SQLiteNIO", package: "sqlite-nio")]),
        // The clean room's SQL engine and output rules, linked only into the clean room enclave.
        .target(
            name: "CleanRoomEngine",
            dependencies: [
                "CleanRoom", "EnclaveCore", "CCleanRoomSQLite",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The clean room enclave's ECALLs and their Codable types (shared by the enclave and its host).
        .target(name: "CleanRoomInterface", dependencies: ["EnclaveCore"], swiftSettings: strictSettings),
        // The clean room enclave: verifies the contract, binds its ID and an ephemeral key into its evidence.
        .executableTarget(
            name: "CleanRoomEnclave",
            dependencies: [
                "CleanRoom", "CleanRoomEngine", "CleanRoomInterface", "EnclaveRuntime", "KeyReleaseFormats",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // Envelope encryption under a broker key (`enclave keys encrypt|decrypt`, and enclaves that got the key):
        // a data key per file, the file in sealed-stream chunks; no HTTP, so an enclave can link it.
        .target(
            name: "KeyEnvelope",
            dependencies: [
                "EnclaveCore", "KeyReleaseFormats",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The clean room's untrusted host: HTTPS API, store of contracts, signatures and encrypted data sets, status page.
        .target(
            name: "CleanRoomHost",
            dependencies: [
                "CleanRoom", "CleanRoomInterface", "AttestationService", "EnclaveCore", "EnclaveHost",
                "KeyReleaseFormats",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The key broker's host: Key Vault-shaped HTTPS routes, wrapped-key store, append-only audit, replicas; every
        // key operation in the broker enclave (KeyBrokerInterface's ECALLs).
        .target(
            name: "KeyBrokerService",
            dependencies: [
                "AttestationService", "AttestationAPI", "KeyBroker", "KeyBrokerInterface", "EnclaveCore", "EnclaveHost",
                "AttestationClient", "Attestation",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The key broker's store on PostgreSQL, for replicas on one database; behind the Postgres trait like
        // AttestationServicePostgres (whose connection and TLS handling it shares).
        .target(
            name: "KeyBrokerServicePostgres",
            dependencies: [
                "KeyBrokerService", "AttestationServicePostgres", "AttestationService", "AttestationAPI", "EnclaveCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The clean room host's records on PostgreSQL (`enclave cleanroom serve --database`); behind the Postgres
        // trait like KeyBrokerServicePostgres.
        .target(
            name: "CleanRoomHostPostgres",
            dependencies: [
                "CleanRoomHost", "AttestationServicePostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Relying parties and attesters: the service's REST client and token verification against its JWKS.
        .target(
            name: "AttestationClient",
            dependencies: [
                "EnclaveCore", "Attestation", "AttestationAPI", "KeyReleaseFormats",
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "enclave",
            dependencies: [
                "EnclaveCore", "EnclaveHost", "EnclaveRuntime", "Attestation", "AttestationService",
                "AttestationClient", "AttestationAPI", "CleanRoom", "CleanRoomHost",
                "KeyBrokerService", "KeyBrokerInterface", "KeyEnvelope",
                .target(name: "AttestationServicePostgres", condition: .when(traits: ["Postgres"])),
                .target(name: "KeyBrokerServicePostgres", condition: .when(traits: ["Postgres"])),
                .target(name: "CleanRoomHostPostgres", condition: .when(traits: ["Postgres"])),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),

        // Samples/Hello: interface shared by both sides, the enclave, the host.
        .target(name: "HelloInterface", dependencies: ["EnclaveCore"], path: "Samples/Hello/HelloInterface"),
        .executableTarget(
            name: "HelloEnclave",
            dependencies: ["HelloInterface", "EnclaveRuntime", .product(name: "Crypto", package: "swift-crypto")],
            path: "Samples/Hello/HelloEnclave"
        ),
        .executableTarget(
            name: "HelloHost",
            dependencies: [
                "HelloInterface", "EnclaveHost", "Attestation", "AttestationService", "AttestationClient",
                "AttestationAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Samples/Hello/HelloHost"
        ),

        // Samples/Vault: seal secrets in the enclave, keep the blobs on the host.
        .target(name: "VaultInterface", dependencies: ["EnclaveCore"], path: "Samples/Vault/VaultInterface"),
        .executableTarget(
            name: "VaultEnclave",
            dependencies: ["VaultInterface", "EnclaveRuntime"],
            path: "Samples/Vault/VaultEnclave"
        ),
        .executableTarget(
            name: "VaultHost",
            dependencies: [
                "VaultInterface", "EnclaveHost", "EnclaveCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Samples/Vault/VaultHost"
        ),

        // Samples/SecretProcessing: a broker key released to an attested enclave, which decrypts, summarises and
        // re-encrypts to the owner; the host carries only opaque bytes.
        .target(
            name: "SecretProcessingInterface",
            dependencies: ["EnclaveCore"],
            path: "Samples/SecretProcessing/SecretProcessingInterface"
        ),
        .executableTarget(
            name: "SecretProcessingEnclave",
            dependencies: [
                "SecretProcessingInterface", "EnclaveRuntime", "EnclaveCore", "EnclaveKeyRelease", "KeyEnvelope",
                "KeyReleaseFormats",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            path: "Samples/SecretProcessing/SecretProcessingEnclave"
        ),
        .executableTarget(
            name: "SecretProcessingHost",
            dependencies: [
                "SecretProcessingInterface", "EnclaveHost", "EnclaveCore", "AttestationClient", "KeyBrokerService",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Samples/SecretProcessing/SecretProcessingHost"
        ),

        // An enclave that misbehaves on request, for the sandbox and fault tests.
        .target(name: "TestInterface", dependencies: ["EnclaveCore"], path: "Tests/TestInterface"),
        .executableTarget(
            name: "TestEnclave",
            dependencies: [
                "EnclaveRuntime", "CEnclaveSystem", "TestInterface", "EnclaveKeyRelease",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/TestEnclave"
        ),
        // What the test targets share: the vectors in Tests/Vectors, child processes (the CLI, a served service),
        // signed copies of the test enclaves.
        .target(
            name: "TestSupport",
            dependencies: [
                "EnclaveHost", "EnclaveCore", "Attestation", .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strictSettings
        ),

        .testTarget(
            name: "AttestationTests",
            dependencies: [
                "Attestation", "EnclaveCore", "TestSupport",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "AttestationServiceTests",
            dependencies: [
                "TestSupport",
                "AttestationService", "AttestationClient", "AttestationAPI", "Attestation", "EnclaveCore",
                "EnclaveHost",
                "AttestationServicePostgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "EnclaveCoreTests",
            dependencies: ["EnclaveCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "EnclaveHostTests",
            dependencies: [
                "EnclaveHost", "EnclaveCore", "TestInterface", "_EnclaveChannel", "Attestation", "TestSupport",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KeyBrokerServiceTests",
            dependencies: [
                "CleanRoom",
                "KeyBrokerService", "KeyBrokerInterface", "AttestationService", "AttestationAPI", "EnclaveCore",
                "TestSupport", "KeyEnvelope", "KeyReleaseFormats", "AttestationClient", "EnclaveHost", "Attestation",
                "KeyBrokerServicePostgres",
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KeyBrokerTests",
            dependencies: [
                "CleanRoom",
                "KeyBroker", "KeyBrokerInterface", "KeyReleaseFormats", "AttestationAPI", "EnclaveCore", "TestSupport",
                "EnclaveHost", "AttestationService", "Attestation", "EnclaveKeyRelease", "EnclaveRuntime",
                "TestInterface",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CleanRoomTests",
            dependencies: [
                "CleanRoom", "CleanRoomEngine", "EnclaveCore", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "AttestationClientTests",
            dependencies: ["AttestationClient", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CleanRoomHostTests",
            dependencies: [
                "CleanRoomHost", "CleanRoomInterface", "CleanRoom", "AttestationService", "Attestation", "EnclaveHost",
                "EnclaveCore", "KeyReleaseFormats", "TestSupport", "KeyBroker", "KeyBrokerInterface",
                "CleanRoomHostPostgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The `enclave` executable (and the HelloHost sample) run as processes: output and exit statuses.
        .testTarget(
            name: "EnclaveCLITests",
            dependencies: [
                "TestSupport", "EnclaveHost", "EnclaveCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
