// Forwarder configuration without a broker: topic templates, validation, the builder
// and its JSON field setter.
#include <gtest/gtest.h>
#include <mqttx/forwarder.hpp>

#include "support/error_kind.hpp"
#include "topic_template.hpp"

namespace {

using mqttx::ErrorKind;
using mqttx::ForwarderBuilder;
using mqttx::detail::TopicTemplate;
using mqttx::test::error_kind_of;

std::string render(const std::string& from, const std::string& to, const std::string& topic) {
    std::string problem;
    TopicTemplate compiled(from, to, problem);
    EXPECT_EQ(problem, "") << from << " -> " << to;
    std::string out;
    if (!compiled.apply(topic, out)) return "<no match>";
    return out;
}

std::string problem_of(const std::string& from, const std::string& to) {
    std::string problem;
    TopicTemplate compiled(from, to, problem);
    return problem;
}

TEST(TopicTemplate, PlusLevelsGoWhereTheirNumberSays) {
    EXPECT_EQ(render("sensors/+/temperature", "storage/{1}/temp", "sensors/kitchen/temperature"),
              "storage/kitchen/temp");
    EXPECT_EQ(render("a/+/b/+", "{2}/{1}/{2}", "a/x/b/y"), "y/x/y");
    EXPECT_EQ(render("a/+", "out/{1}", "a/"), "out/");  // an empty level is a level
}

TEST(TopicTemplate, HashRemainderAndWholeTopic) {
    EXPECT_EQ(render("site/#", "cloud/{#}", "site/a/b/c"), "cloud/a/b/c");
    EXPECT_EQ(render("site/#", "cloud/{#}", "site"), "cloud/");  // '#' matched nothing
    EXPECT_EQ(render("#", "copy/{#}", "x/y"), "copy/x/y");
    EXPECT_EQ(render("+/#", "{topic}!{1}", "p/q/r"), "p/q/r!p");
}

// Issue 18: "$share/<group>/" is two levels of the filter that no topic has; they were
// counted as topic levels, so '+' read past the topic's levels (a heap overflow).
TEST(TopicTemplate, SharedSubscriptionsMapByTheirInnerFilter) {
    EXPECT_EQ(render("$share/grp/sensors/+", "out/{1}", "sensors/t0"), "out/t0");
    EXPECT_EQ(render("$share/grp/sensors/#", "out/{#}", "sensors/a/b/c0"), "out/a/b/c0");
    EXPECT_EQ(render("$share/g/+/+", "{2}/{1}", "a/b"), "b/a");
    EXPECT_EQ(render("$share/g/#", "all/{topic}", "x"), "all/x");
    EXPECT_EQ(render("$share/grp/sensors/+", "out/{1}", "$share/grp/sensors"), "<no match>");
    EXPECT_NE(problem_of("$share/g/a/+", "x/{2}").find("has 1 '+' level"), std::string::npos);
}

TEST(TopicTemplate, ExactTopicsAndNonMatches) {
    EXPECT_EQ(render("a/b", "c", "a/b"), "c");
    EXPECT_EQ(render("a/b", "c", "a/b/c"), "<no match>");
    EXPECT_EQ(render("a/+", "c/{1}", "b/x"), "<no match>");
    EXPECT_EQ(render("#", "all/{#}", "$SYS/x"), "<no match>");  // MQTT: '#' skips '$' topics
}

TEST(TopicTemplate, BadMappingsAreNamed) {
    EXPECT_NE(problem_of("a/+", "x/{2}").find("{2}"), std::string::npos);
    EXPECT_NE(problem_of("a/b", "x/{#}").find("{#}"), std::string::npos);
    EXPECT_NE(problem_of("a/+", "x/{one}").find("unknown placeholder"), std::string::npos);
    EXPECT_NE(problem_of("a/+", "x/{1").find("unclosed"), std::string::npos);
    EXPECT_NE(problem_of("a/+", "x/+").find("'+'"), std::string::npos);
    EXPECT_NE(problem_of("a/#/b", "x").find("'from'"), std::string::npos);
    EXPECT_NE(problem_of("a", "").find("empty"), std::string::npos);
    EXPECT_NE(problem_of("a/+", "x/{0}").find("{0}"), std::string::npos);
}

TEST(ForwarderValidation, EveryProblemIsListedByField) {
    try {
        ForwarderBuilder("")
            .source("", {"bad/#/filter"})
            .qos(3)
            .map_topic("a/+", "b/{5}")
            .prefix("p/+/")
            .filter_payload("(unclosed")
            .metadata("mqttx-hops", "1")
            .max_hops(0)
            .buffer(0, mqttx::Overflow::block)
            .share_group("a/b")
            .build();
        FAIL() << "build() accepted a bad forwarder";
    } catch (const mqttx::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::configuration);
        const std::string what = e.what();
        for (const char* field :
             {"name", "sources[0].session", "sources[0].filters", "target", "qos", "mappings[0]",
              "prefix", "payload_patterns", "metadata", "max_hops", "buffer_size", "share_group"}) {
            EXPECT_NE(what.find(field), std::string::npos) << field << " missing from: " << what;
        }
    }
}

TEST(ForwarderValidation, AGoodConfigPasses) {
    const auto config = ForwarderBuilder("bridge")
                            .source("site", {"sensors/+/temperature"})
                            .target("cloud")
                            .map_topic("sensors/+/temperature", "storage/{1}/temp")
                            .metadata("origin", "site")
                            .build();
    EXPECT_EQ(config.name, "bridge");
    ASSERT_EQ(config.sources.size(), 1u);
    EXPECT_EQ(config.sources[0].filters[0], "sensors/+/temperature");
    EXPECT_FALSE(config.qos.has_value());
    EXPECT_EQ(config.mode, mqttx::ForwardMode::at_least_once);
}

TEST(ForwarderBuilder, JsonFieldSetterSetsNestedFieldsAndRefusesNonObjects) {
    const auto config = ForwarderBuilder("json")
                            .source("s", {"#"})
                            .target("t")
                            .set_json_field("site", "north")
                            .set_json_field("meta.unit", "C")
                            .build();
    ASSERT_EQ(config.transforms.size(), 2u);
    std::string payload = R"({"value":21.5})";
    for (const auto& transform : config.transforms) payload = transform(payload);
    EXPECT_EQ(payload, R"({"meta":{"unit":"C"},"site":"north","value":21.5})");
    EXPECT_ANY_THROW(config.transforms[0]("not json"));
    EXPECT_ANY_THROW(config.transforms[0]("[1,2]"));
    EXPECT_ANY_THROW(config.transforms[1](R"({"meta":3})"));
}

}  // namespace
