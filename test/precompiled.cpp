// The translation unit that builds the precompiled header every suite reuses (see CMakeLists.txt).
