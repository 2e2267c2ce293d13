// Gathers every ```cpp block of the Markdown files given into one translation unit, so a
// renamed function cannot leave a stale example: the build of that unit is the check.
//   omniq_extract_snippets <out.cpp> <file.md>...
// A block holding definitions (a function, a type, an #include) is kept as it is, inside a
// namespace of its own, its `main` renamed; a block of statements becomes a function's body.
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Snippet {
  std::string file;
  int line = 0;
  std::string code;
};

std::vector<Snippet> extract(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<Snippet> out;
  std::string line;
  int number = 0;
  bool inside = false;
  Snippet current;
  while (std::getline(in, line)) {
    ++number;
    if (!inside && line.rfind("```cpp", 0) == 0) {
      inside = true;
      current = Snippet{path, number + 1, {}};
    } else if (inside && line.rfind("```", 0) == 0) {
      inside = false;
      out.push_back(current);
    } else if (inside) {
      current.code += line + "\n";
    }
  }
  return out;
}

bool defines_things(const std::string& code) {
  static const std::regex top_level(R"((^|\n)(#include|template|struct|class|namespace|[A-Za-z_][\w:<>, ]*\s+[\w:]+\([^;]*\)\s*(const\s*)?\{))");
  return std::regex_search(code, top_level);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: omniq_extract_snippets <out.cpp> <file.md>...\n";
    return 64;
  }
  std::ostringstream unit;
  unit << "// Generated from the documentation's C++ snippets; do not edit.\n"
       << "#include <iostream>\n#include <boost/asio.hpp>\n"
       << "#include <boost/asio/experimental/awaitable_operators.hpp>\n#include <omniq/omniq.hpp>\n\n";
  int n = 0;
  try {
    for (int i = 2; i < argc; ++i) {
      for (const auto& s : extract(argv[i])) {
        ++n;
        unit << "#line " << s.line << " \"" << s.file << "\"\n";
        if (defines_things(s.code)) {
          unit << "namespace snippet_" << n << " {\n#define main main_" << n << "\n" << s.code << "#undef main\n}\n";
        } else {
          unit << "namespace snippet_" << n << " {\n[[maybe_unused]] void body() {\n" << s.code << "}\n}\n";
        }
      }
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  std::ofstream(argv[1]) << unit.str();
  std::cout << n << " snippets\n";
  return 0;
}
