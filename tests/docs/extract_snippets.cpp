// Gathers every ```cpp block of the Markdown files given into one translation unit, so a
// renamed function cannot leave a stale example: the build of that unit is the check.
//   omniq_extract_snippets <out.cpp> <file.md>...
// A block holding definitions (a function, a type, an #include) is kept as it is, inside a
// namespace of its own, its `main` renamed; a block of statements becomes a function's body
// (a coroutine returning asio::awaitable<void> when it co_awaits). A fragment that uses names
// the page declares elsewhere gets them from an HTML comment just before its block, invisible
// on the rendered page:
//   <!-- snippet-context: omniq::EventLog& log = backend.event_log(); std::string id; -->
// The context goes at namespace scope, before the code (or before the function holding it).
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Snippet {
  std::string file;
  int line = 0;
  std::string context;  // from a <!-- snippet-context: ... --> comment before the block
  std::string code;
};

constexpr std::string_view kContextOpen = "<!-- snippet-context:";
constexpr std::string_view kCommentClose = "-->";

std::vector<Snippet> extract(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<Snippet> out;
  std::string line;
  int number = 0;
  bool inside = false;
  bool in_context = false;
  std::string context;  // the context comment waiting for its block
  Snippet current;
  while (std::getline(in, line)) {
    ++number;
    if (!inside && !in_context && line.rfind(kContextOpen, 0) == 0) {
      context.clear();
      line.erase(0, kContextOpen.size());
      in_context = true;
    }
    if (in_context) {
      const auto close = line.find(kCommentClose);
      context += line.substr(0, close) + "\n";
      if (close != std::string::npos) in_context = false;
      continue;
    }
    if (!inside && line.rfind("```cpp", 0) == 0) {
      inside = true;
      current = Snippet{path, number + 1, std::move(context), {}};
      context.clear();
    } else if (!inside && line.rfind("```", 0) == 0) {
      context.clear();  // a context belongs to the very next block
    } else if (inside && line.rfind("```", 0) == 0) {
      inside = false;
      out.push_back(current);
    } else if (inside) {
      current.code += line + "\n";
    }
  }
  return out;
}

bool awaits(const std::string& code) {
  static const std::regex coroutine_keyword(R"(\bco_(await|return)\b)");
  return std::regex_search(code, coroutine_keyword);
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
        const std::string place = "#line " + std::to_string(s.line) + " \"" + s.file + "\"\n";
        unit << "namespace snippet_" << n << " {\n";
        unit << s.context;
        if (defines_things(s.code)) {
          unit << "#define main main_" << n << "\n" << place << s.code << "#undef main\n";
        } else {
          unit << "[[maybe_unused]] " << (awaits(s.code) ? "boost::asio::awaitable<void>" : "void") << " body() {\n"
               << place << s.code << (awaits(s.code) ? "co_return;\n" : "") << "}\n";
        }
        unit << "}\n";
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
