#include "data/log_values.h"

#include "testutil/testutil.h"

namespace vrec {
namespace {

TEST(LogValuesTest, TimestampsAsNumbersOrIso8601) {
  EXPECT_EQ(*ParseTimestamp("1700000000"), 1700000000.0);
  EXPECT_EQ(*ParseTimestamp("1700000000.25"), 1700000000.25);
  EXPECT_EQ(*ParseTimestamp("2023-11-14T22:13:20Z"), 1700000000.0);
  EXPECT_EQ(*ParseTimestamp("2023-11-14T23:13:20+01:00"), 1700000000.0);
  EXPECT_EQ(*ParseTimestamp("2023-11-14 22:13:20"), 1700000000.0);  // UTC when unzoned
  EXPECT_EQ(*ParseTimestamp("2023-11-14T22:13:20.5Z"), 1700000000.5);
  EXPECT_EQ(*ParseTimestamp("1970-01-02"), 86400.0);
  for (const char* bad : {"", "yesterday", "2023-13-01", "2023-11-14T25:00:00Z", "nan", "inf"}) {
    EXPECT_THAT(ParseTimestamp(bad).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, "timestamp"))
        << bad;
  }
}

TEST(LogValuesTest, EventsGenderNumbers) {
  EXPECT_EQ(*ParseEventKind("Watch"), EventKind::kWatch);
  EXPECT_EQ(*ParseEventKind("impression"), EventKind::kImpression);
  EXPECT_EQ(*ParseEventKind("CLICK"), EventKind::kClick);
  EXPECT_EQ(*ParseEventKind("search"), EventKind::kSearch);
  EXPECT_THAT(ParseEventKind("purchase").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "'purchase' is none of"));
  EXPECT_EQ(*ParseGender("0.3"), 0.3);
  EXPECT_EQ(*ParseGender("F"), 1.0);
  EXPECT_EQ(*ParseGender("male"), 0.0);
  EXPECT_EQ(*ParseGender("nonbinary"), 0.5);
  EXPECT_THAT(ParseGender("2").status(), StatusIs(absl::StatusCode::kInvalidArgument, "outside"));
  EXPECT_EQ(*ParseNumber("31.5", 0), 31.5);
  EXPECT_THAT(ParseNumber("-1", 0).status(), StatusIs(absl::StatusCode::kInvalidArgument, "below"));
  EXPECT_THAT(ParseNumber("x", 0).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a number"));
}

TEST(LogValuesTest, QueriesBecomeLowerCaseTokens) {
  EXPECT_EQ(QueryTokens("Funny CATS, 2024!!"), (std::vector<std::string>{"funny", "cats", "2024"}));
  EXPECT_EQ(QueryTokens("  "), std::vector<std::string>{});
  EXPECT_EQ(QueryTokens("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac"),
            (std::vector<std::string>{"caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac"}));
  EXPECT_EQ(QueryTokens("a b c d", 2), (std::vector<std::string>{"c", "d"}));
}

}  // namespace
}  // namespace vrec
