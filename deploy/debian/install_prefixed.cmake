# Install-time part of Packaging.cmake: the files whose text or place depends on the install
# prefix. CMAKE_INSTALL_PREFIX here is the one `cmake --install --prefix` or CPack (/usr) uses.
set(_bin "${CMAKE_INSTALL_PREFIX}/bin/tern")
file(MAKE_DIRECTORY "${TERN_STAGE_DIR}")
foreach(_file tern.service tern-credentials.conf.example)
  file(READ "${TERN_SOURCE_DIR}/deploy/systemd/${_file}" _text)
  string(REPLACE "/usr/local/bin/tern" "${_bin}" _text "${_text}")
  file(WRITE "${TERN_STAGE_DIR}/${_file}" "${_text}")
endforeach()
file(INSTALL "${TERN_STAGE_DIR}/tern.service"
     DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
file(INSTALL "${TERN_STAGE_DIR}/tern-credentials.conf.example"
     DESTINATION "${CMAKE_INSTALL_PREFIX}/share/doc/tern/examples")

# The default configuration, /etc/tern/tern.conf, with the /usr prefix (the package's) only:
# a source install under /usr/local copies an example to /etc/tern (docs/operations.md §1).
# Never over an operator's file: a package replaces it only through dpkg's conffile handling.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr" AND NOT EXISTS "$ENV{DESTDIR}/etc/tern/tern.conf")
  file(INSTALL "${TERN_SOURCE_DIR}/deploy/tern.conf" DESTINATION "/etc/tern")
endif()
