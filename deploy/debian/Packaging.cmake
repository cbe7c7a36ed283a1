# The Debian package: `cmake --build <build dir> --target package` writes
# tern_<version>_<arch>.deb holding /usr/bin/tern, the systemd unit, the sysusers entry, the
# default configuration /etc/tern/tern.conf (a conffile) and the shipped examples. CPack's
# DEB generator, which comes with CMake, rather than debhelper: the package is made from the
# same install rules as `cmake --install`, in any build tree, with no debian/ tree to keep
# in step with CMakeLists.txt.

# The rest of an install besides the binary (relay/app/CMakeLists.txt installs it), relative
# to the prefix: a package's is /usr, a source install's /usr/local (systemd and
# systemd-sysusers read /usr/local/lib too). The default configuration: install_prefixed.cmake.
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/tern.sysusers
        DESTINATION lib/sysusers.d RENAME tern.conf)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/public-node.conf
              ${PROJECT_SOURCE_DIR}/deploy/systemd/tern-privileged-ports.conf
              ${PROJECT_SOURCE_DIR}/deploy/systemd/tern-fast-path.conf
              ${PROJECT_SOURCE_DIR}/deploy/sysctl/90-tern.conf
        DESTINATION share/doc/tern/examples)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/copyright DESTINATION share/doc/tern)

# deploy/systemd/ names /usr/local/bin/tern, where the source install in docs/operations.md
# puts it; the installed unit and credentials drop-in name the binary of this install. The
# prefix is known only at install time (CPack installs with /usr), hence code, not FILES.
install(CODE "set(TERN_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
              set(TERN_STAGE_DIR \"${CMAKE_CURRENT_BINARY_DIR}/tern-install-stage\")")
install(SCRIPT ${CMAKE_CURRENT_LIST_DIR}/install_prefixed.cmake)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tern)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
# DESTDIR staging with the prefix /usr, so the install code sees the real prefix and /etc
# lands in the package rather than on the building host.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "tern maintainers <maintainers@tern.invalid>")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# CPack puts the summary first and indents the rest as the Description field wants.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "tern relays media for WebRTC and SIP clients behind NATs (TURN, RFC 8656;
STUN, RFC 8489; TURN over TCP, RFC 6062) over UDP, TCP, TLS and DTLS. It runs
as a hardened systemd service, exports Prometheus metrics, drains on stop and
upgrades in place on reload.

The service is neither enabled nor started on install: it needs a TURN REST
secret or a user file first (/etc/tern/tern.conf, /usr/share/doc/tern/examples).")
# Depends from the libraries the binary links (libuv1, libssl3, libprometheus-cpp, ...),
# as dpkg-shlibdeps computes them on the building host.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS systemd)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/conffiles ${CMAKE_CURRENT_LIST_DIR}/postinst
    ${CMAKE_CURRENT_LIST_DIR}/prerm ${CMAKE_CURRENT_LIST_DIR}/postrm)
# Maintainer scripts 0755 and conffiles 0644 whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
